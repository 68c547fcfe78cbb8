"""The evaluation's judge steps over a `RunState`: the speaker judge (who does each clip sound like) and
speech recognition (transcripts of source, reconstructed and converted audio, WER)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from vqconvert.errors import AudioError
from vqconvert.evaluation.dsp import noise_clips
from vqconvert.evaluation.metrics import noise_answers
from vqconvert.evaluation.selection import prepare_audio, unit_hash
from vqconvert.evaluation.state import EvalItem, RunState


def speaker_judge(run: RunState, items: list[EvalItem], targets: list[str], utts, in_train: set[str]) -> dict | None:
    """Who each input, reconstruction and conversion sounds like, by nearest reference centroid; fills
    the rows and returns {"judge", "noise", "n_references"} (None when the judge does not run)."""
    if not run.use("speaker"):
        return None
    from vqconvert.evaluation.judges import SpeakerJudge

    judge = SpeakerJudge(device=run.opts.judge_device)
    evaluated = {i.utt.key for i in items}
    pool: dict[str, list] = defaultdict(list)
    seen: set[str] = set()
    for root in run.reference_roots():
        found = utts if root in run.data else run.scan(root)
        for u in found:
            if u.key not in evaluated and u.key not in seen:
                seen.add(u.key)
                pool[u.speaker].append(u)
    model_spk = [s for s in run.loaded.speakers if s in pool]
    unknown_src = sorted({i.utt.speaker for i in items if not i.known})
    wanted = model_spk + [s for s in unknown_src if s in pool]
    n_refs = sum(min(len(pool[s]), run.opts.reference_utterances) for s in wanted)
    run.log(f"speaker judge: embedding {n_refs} reference utterances of {len(wanted)} speakers")
    embs: dict[str, list[np.ndarray]] = {}
    done = 0
    for s in wanted:
        ranked = sorted(pool[s], key=lambda u: (u.key not in in_train, unit_hash(u.key), u.utt_id))
        embs[s] = []
        for u in ranked[: run.opts.reference_utterances]:
            try:
                audio, _, _ = prepare_audio(u.path, run.sr, run.opts.reference_seconds, 1)
            except AudioError as err:
                run.note(f"reference skipped: {err}")
                continue
            embs[s].append(judge.embed(audio))
            done += 1
            run.progress("references", done, n_refs)
    judge.set_references({s: embs[s] for s in model_spk if embs.get(s)})
    extra_centroids = {}
    for s in unknown_src:
        if embs.get(s):
            c = np.mean(np.stack(embs[s]), axis=0)
            extra_centroids[s] = c / max(float(np.linalg.norm(c)), 1e-12)
    missing_targets = [t for t in targets if t not in judge.names]
    if missing_targets:
        run.note(
            f"no real audio of target(s) {', '.join(missing_targets)} in the data: they can never be "
            f"identified (pass their corpus as DATA)"
        )
    if not judge.names:
        run.note("speaker judge skipped: none of the model's speakers has real audio in the data")
        return None

    noise = noise_answers(judge, max(run.opts.max_seconds, 0.5), run.sr, seed=run.opts.sampling.seed)

    def src_sim(it: EvalItem, emb: np.ndarray, own: np.ndarray) -> float:
        s = judge.similarity(emb, it.utt.speaker)
        if s is not None:
            return s
        if it.utt.speaker in extra_centroids:
            return float(extra_centroids[it.utt.speaker] @ emb)
        return float(own @ emb)

    for it in items:
        own = judge.embed(it.audio)
        r = it.row
        r["input_identified_as"] = judge.identify(own)[0]
        rec = judge.embed(it.recon)
        r["reconstruction_identified_as"] = judge.identify(rec)[0]
        r["reconstruction_similarity"] = round(src_sim(it, rec, own), 4)
        for c in r["conversions"]:
            e = judge.embed(it.conversions[c["target"]])
            st = judge.similarity(e, c["target"])
            c.update(
                {
                    "identified_as": judge.identify(e)[0],
                    "similarity_to_target": None if st is None else round(st, 4),
                    "similarity_to_source": round(src_sim(it, e, own), 4),
                }
            )
    return {"judge": judge, "noise": noise, "n_references": done}


def intelligibility(run: RunState, items: list[EvalItem], targets: list[str]) -> tuple[dict, dict | None]:
    """pocketsphinx transcripts and WER of source, reconstructed and converted audio (utterances that
    fit whole); -> (the intelligibility result, what the recogniser hears in silence and noise)."""
    out: dict[str, Any] = {
        "n_utterances": 0,
        "wer_source": None,
        "wer_reconstructed": None,
        "wer_converted": None,
        "by_source_voice": {},
        "by_target_voice": {},
    }
    whole = [i for i in items if i.utt.text and not i.cropped]
    if not run.use("asr"):
        return out, None
    if not whole:
        why = (
            "no transcripts"
            if not any(i.utt.text for i in items)
            else "every utterance with a transcript was cropped (raise --max-seconds)"
        )
        run.note(f"WER not measured: {why}")
        return out, None
    from vqconvert.evaluation.judges import Transcriber

    asr = Transcriber(run.sr)
    secs = max(run.opts.max_seconds, 0.5)
    asr_noise = {
        "silence": asr.transcribe(np.zeros(int(secs * run.sr), np.float32)),
        **{k: asr.transcribe(v) for k, v in noise_clips(secs, run.sr, run.opts.sampling.seed).items()},
    }
    n_clips = sum(2 + len(i.conversions) for i in whole)
    run.log(f"speech recognition: {n_clips} clips")
    done = 0
    hyps: dict[tuple[str, str], str] = {}  # (key, "source" | "recon" | target) -> text
    for it in whole:
        clips = [("source", it.audio), ("recon", it.recon), *it.conversions.items()]
        for kind, wav in clips:
            hyps[(it.utt.key, kind)] = asr.transcribe(wav)
            done += 1
            run.progress("asr", done, n_clips)
        it.row["hyp_source"] = hyps[(it.utt.key, "source")]
        it.row["hyp_reconstruction"] = hyps[(it.utt.key, "recon")]
        for c in it.row["conversions"]:
            c["hyp"] = hyps[(it.utt.key, c["target"])]

    def wer(sel: list[EvalItem], kind: str | None = None, target: str | None = None) -> float | None:
        refs, hs = [], []
        for it in sel:
            kinds = [kind] if kind else list(it.conversions)
            if target is not None:
                kinds = [target] if target in it.conversions else []
            for k in kinds:
                refs.append(it.utt.text)
                hs.append(hyps[(it.utt.key, k)])
        return asr.wer(refs, hs)["wer"] if refs else None

    if asr.timeouts:
        run.note(
            f"speech recognition stopped early on {asr.timeouts} of {n_clips} clips (over "
            f"{asr.max_realtime:g}x real time + 2 s): their unheard words count as deletions"
        )
    out.update(
        {
            "n_utterances": len(whole),
            "timed_out_clips": asr.timeouts,
            "wer_source": wer(whole, "source"),
            "wer_reconstructed": wer(whole, "recon"),
            "wer_converted": wer(whole),
        }
    )
    for spk in sorted({i.utt.speaker for i in whole}):
        sel = [i for i in whole if i.utt.speaker == spk]
        out["by_source_voice"][spk] = {
            "n": len(sel),
            "wer_source": wer(sel, "source"),
            "wer_reconstructed": wer(sel, "recon"),
            "wer_converted": wer(sel),
        }
    for t in targets:
        sel = [i for i in whole if t in i.conversions]
        out["by_target_voice"][t] = {
            "n": len(sel),
            "wer_converted": wer(sel, target=t),
            "wer_source": wer(sel, "source"),
        }
    return out, asr_noise
