"""The evaluation's audio steps over a `RunState`: load the sources, encode them, generate
reconstructions and conversions, save them as WAV and measure the reconstructions (MCD, STOI, PESQ)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from vqconvert.audio import save_wav
from vqconvert.errors import AudioError
from vqconvert.evaluation.metrics import bits_per_sample, mcd
from vqconvert.evaluation.selection import prepare_audio
from vqconvert.evaluation.state import EvalItem, RunState
from vqconvert.fileio import safe_name
from vqconvert.stats import speaker_gain


def load_sources(run: RunState, chosen: Sequence) -> list[EvalItem]:
    """Each chosen utterance trimmed and cropped, with its empty result row (unreadable ones: a note)."""
    items = []
    speakers = run.loaded.speakers
    for u in chosen:
        try:
            audio, cropped, secs = prepare_audio(u.path, run.sr, run.opts.max_seconds, run.hop)
        except AudioError as err:
            run.note(f"skipped {u.key}: {err}")
            continue
        known = u.speaker in speakers
        it = EvalItem(u, audio, cropped, secs, known, speakers.index(u.speaker) if known else None)
        it.row = {
            "key": u.key,
            "speaker": u.speaker,
            "known_speaker": known,
            "path": str(u.path),
            "text": u.text,
            "seconds": len(audio) / run.sr,
            "trimmed_seconds": round(secs, 3),
            "cropped": cropped,
            "input_identified_as": None,
            "reconstruction_identified_as": None,
            "reconstruction_similarity": None,
            "hyp_source": None,
            "hyp_reconstruction": None,
            "conversions": [],
        }
        items.append(it)
    return items


def encode(run: RunState, items: list[EvalItem], targets: list[str]) -> None:
    """Codes of every item, and (known speakers) the teacher-forced NLL as itself and as others."""
    from vqconvert.inference import encode_audio

    model, spk = run.loaded.model, run.loaded.speakers
    for it in items:
        it.codes = encode_audio(model, it.audio)
        it.row["frames"] = int(it.codes.numel())
        it.row["codes_used"] = int(torch.unique(it.codes).numel())
        it.row["nll_bits_per_sample"] = it.row["nll_other_speakers_bits"] = None
        if it.known and run.use("nll"):
            it.row["nll_bits_per_sample"] = bits_per_sample(model, it.codes, it.spk_index, it.audio)
            # The same codes and audio scored as other speakers (the transfer targets, else the next
            # speaker): the gap says how much the decoder uses the speaker embedding at all.
            others = [spk.index(t) for t in targets if t != it.utt.speaker] or (
                [(it.spk_index + 1) % len(spk)] if len(spk) > 1 else []
            )
            if others:
                other_bits = [bits_per_sample(model, it.codes, o, it.audio) for o in others]
                it.row["nll_other_speakers_bits"] = sum(other_bits) / len(other_bits)
                it.speaker_gain_bits = speaker_gain(it.row["nll_bits_per_sample"], other_bits)


def generate(run: RunState, items: list[EvalItem], targets: list[str]) -> None:
    """Every reconstruction (in the source voice, else the first target's) and conversion, decoded
    `batch_size` clips at a time with `vqconvert.decoding.decode_codes`."""
    from vqconvert.decoding import decode_codes

    o, spk, hop = run.opts, run.loaded.speakers, run.hop
    jobs: list[tuple[EvalItem, str | None, str]] = []  # (item, target or None for recon, voice)
    for it in items:
        voice = it.utt.speaker if it.known else (targets[0] if targets else spk[0])
        it.recon_voice = voice
        jobs.append((it, None, voice))
        for t in targets:
            if t != it.utt.speaker:
                jobs.append((it, t, t))
    starts, total = [], 0  # each job's first sample in the whole run, for the progress bar
    for it, _, _ in jobs:
        starts.append(total)
        total += int(it.codes.numel()) * hop
    run.log(f"generating {len(jobs)} clips ({total / run.sr:.1f} s of audio) in batches of {o.batch_size}")

    def report(batch, done: int, _total: int) -> None:
        run.progress("generate", starts[batch[0].key] + done, total)

    outs = decode_codes(
        run.loaded.model,
        [it.codes for it, _, _ in jobs],
        [spk.index(v) for _, _, v in jobs],
        o.sampling,
        batch_size=max(1, o.batch_size),
        progress=report,
        vocoder=o.vocoder,
        mel_net=None if o.mel_net is None else o.mel_net.net,
    )
    for (it, target, _), wav in zip(jobs, outs, strict=True):
        if target is None:
            it.recon = wav
            continue
        it.conversions[target] = wav
        it.row["conversions"].append(
            {
                "target": target,
                "identified_as": None,
                "similarity_to_target": None,
                "similarity_to_source": None,
                "hyp": None,
            }
        )
    run.progress("generate", total, total)


def save(run: RunState, items: list[EvalItem]) -> None:
    """Inputs, reconstructions and conversions as SPEAKER/UTT.*.wav under the out_dir (overwriting)."""
    out = Path(run.opts.out_dir)
    for it in items:
        d = out / safe_name(it.utt.speaker)
        d.mkdir(parents=True, exist_ok=True)
        stem = safe_name(it.utt.utt_id)
        files = {"source": d / f"{stem}.source.wav"}
        recon_name = "recon" if it.known else f"recon-{safe_name(it.recon_voice)}"
        files["reconstruction"] = d / f"{stem}.{recon_name}.wav"
        save_wav(files["source"], it.audio, run.sr, overwrite=True)
        save_wav(files["reconstruction"], it.recon, run.sr, overwrite=True)
        for t, wav in it.conversions.items():
            files[t] = d / f"{stem}.to-{safe_name(t)}.wav"
            save_wav(files[t], wav, run.sr, overwrite=True)
        it.row["files"] = {k: str(v) for k, v in files.items()}


def reconstruction_metrics(run: RunState, items: list[EvalItem]) -> None:
    """MCD, STOI and PESQ of each reconstruction against its input."""
    from vqconvert.evaluation import judges

    for it in items:
        r = it.row
        r["reconstruction_voice"] = it.recon_voice
        r["mcd_db"] = mcd(it.audio, it.recon, run.sr) if run.use("mcd") else None
        r["stoi"] = judges.stoi(it.audio, it.recon, run.sr) if run.use("stoi") else None
        r["pesq_wb"] = judges.pesq_wb(it.audio, it.recon, run.sr) if run.use("pesq") else None
    if run.use("stoi") and all(i.row["stoi"] is None for i in items):
        run.note(f"STOI not measured: clips shorter than {judges.STOI_MIN_SECONDS} s of speech")
