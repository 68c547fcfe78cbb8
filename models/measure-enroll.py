"""Speaker similarity of conversions to a newly enrolled voice, before and after enrolment.

For each new voice (LibriSpeech speakers of ../shared/librispeech-251, one clip each: the first
--enrol-seconds are the enrolment clip, the rest the reference; and synthesizer voices the model never
heard: enrolment sentences and other reference sentences), source utterances of the corpus are converted
to the new voice by three decoders that differ only in the speaker row:

  nearest  the existing speaker whose real audio the judge finds closest to the enrolment audio
  mean     the mean of the existing rows (where `vqconvert enroll` starts; 0 steps)
  enrolled the row fitted by `vqconvert.enroll.enroll` (what `vqconvert enroll` writes)

The judge (resemblyzer, vqconvert.evaluation.judges.SpeakerJudge) gives the cosine similarity of each conversion to
the new voice's reference centroid, and whether the new voice is the nearest among all candidates (the
model's speakers from real audio, plus the new voice). Prints a table and writes JSON.

    OMP_NUM_THREADS=1 .venv/bin/python models/measure-enroll.py --threads 1 --out out/enroll.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vqconvert.audio import load_audio, trim_silence  # noqa: E402
from vqconvert.checkpoint import build_model, load_checkpoint  # noqa: E402
from vqconvert.data import synth  # noqa: E402
from vqconvert.decoding import decode_codes  # noqa: E402
from vqconvert.enroll import EnrollConfig, clip_bits, enroll, extend_speakers  # noqa: E402
from vqconvert.evaluation.judges import SpeakerJudge  # noqa: E402
from vqconvert.inference import encode_audio  # noqa: E402
from vqconvert.sampling import SamplingOptions  # noqa: E402

SOURCES = ("flite-awb_0299", "espeak-en-us-m3_0299", "festival-ked_0299", "espeak-en-f4_0299")
SYNTH_ENROL = 8  # sentences for a synthesizer voice's enrolment, then 3 for its reference
SR = 16000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def reference_audio(name: str, corpus: Path, vctk: Path, n: int = 2) -> list[np.ndarray]:
    """Real audio of an existing speaker: its first n corpus or VCTK clips (silence trimmed)."""
    d = corpus / name if (corpus / name).is_dir() else vctk / "wav48" / name
    files = sorted(d.glob("*.wav"))[:n] if d.is_dir() else []
    return [trim_silence(load_audio(f, SR)) for f in files]


def new_voices(args) -> list[dict]:
    out = []
    for spk in args.libri:
        (clip,) = sorted((args.librispeech / spk).glob("*.flac"))
        audio = trim_silence(load_audio(clip, SR))
        cut = int(args.enrol_seconds * SR)
        if audio.size < cut + 2 * SR:
            raise SystemExit(f"{clip}: too short to split into enrolment and reference")
        out.append({"name": f"libri-{spk}", "kind": "LibriSpeech", "enrol": [audio[:cut]], "ref": [audio[cut:]]})
    texts = synth.load_sentences()
    for spec in args.synth:
        voice = synth.resolve_voice(spec)
        order = synth.sentence_order(len(texts), voice.name, 0)[: SYNTH_ENROL + 3]
        audio = [trim_silence(a) for a in synth.render_to_arrays(voice, [texts[k] for k in order])]
        out.append(
            {"name": voice.name, "kind": "synthesizer", "enrol": audio[:SYNTH_ENROL], "ref": audio[SYNTH_ENROL:]}
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "vqconvert-synth-small.pt")
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus" / "synth")
    ap.add_argument("--vctk", type=Path, default=ROOT.parent / "shared" / "vctk-mini")
    ap.add_argument("--librispeech", type=Path, default=ROOT.parent / "shared" / "librispeech-251")
    ap.add_argument("--libri", nargs="*", default=["103", "1040"])
    ap.add_argument("--synth", nargs="*", default=["espeak-ng:en-us+linda"])
    ap.add_argument("--enrol-seconds", type=float, default=8.0)
    ap.add_argument("--source-seconds", type=float, default=3.0)
    ap.add_argument("--steps", type=int, default=EnrollConfig().steps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.monotonic()
    ckpt = load_checkpoint(args.model)
    base = build_model(ckpt).eval()
    speakers = list(ckpt["speakers"])
    judge = SpeakerJudge()
    log(f"references for {len(speakers)} speakers")
    refs = {s: [judge.embed(a) for a in reference_audio(s, args.corpus, args.vctk)] for s in speakers}
    refs = {s: e for s, e in refs.items() if e}
    sources = []
    for name in SOURCES:
        audio = trim_silence(load_audio(args.corpus / name.rsplit("_", 1)[0] / f"{name}.wav", SR))
        sources.append(audio[: int(args.source_seconds * SR)])
    sampling = SamplingOptions(seed=args.seed)
    rows = []
    for v in new_voices(args):
        judge.set_references({**refs, v["name"]: [judge.embed(a) for a in v["ref"]]})
        enrol_emb = np.mean([judge.embed(a) for a in v["enrol"]], axis=0)
        sims = {s: float(np.mean([e @ enrol_emb for e in embs])) for s, embs in refs.items()}
        nearest = max(sims, key=sims.get)
        log(f"{v['name']}: enrolling on {sum(a.size for a in v['enrol']) / SR:.1f} s; nearest existing: {nearest}")
        res = enroll(base, speakers, v["enrol"], EnrollConfig(steps=args.steps, seed=args.seed), log=log)
        mean_model = extend_speakers(base)
        codes = [encode_audio(base, a) for a in sources]
        conds = {
            "nearest": (base, speakers.index(nearest)),
            "mean": (mean_model, len(speakers)),
            "enrolled": (res.model, res.index),
        }
        row = {
            "voice": v["name"],
            "kind": v["kind"],
            "nearest": nearest,
            "enrol_seconds": round(sum(a.size for a in v["enrol"]) / SR, 2),
            "bits_before": res.bits_before,
            "bits_after": res.bits_after,
            "fit_seconds": round(res.seconds, 1),
        }
        for cond, (model, idx) in conds.items():
            row[f"{cond}_heldout_bits"] = clip_bits(model, v["ref"], idx)  # the reference audio, not enrolled on
            wavs = decode_codes(model, codes, [idx] * len(codes), sampling, samples=[a.size for a in sources])
            embs = [judge.embed(trim_silence(w)) for w in wavs]
            row[f"{cond}_cosine"] = float(np.mean([judge.similarity(e, v["name"]) for e in embs]))
            row[f"{cond}_identified"] = sum(judge.identify(e)[0] == v["name"] for e in embs)
            row[f"{cond}_names"] = [judge.identify(e)[0] for e in embs]
        table = res.model.decoder.speaker.weight.detach()
        row["row_norm_enrolled"] = float(table[res.index].norm())
        row["row_norm_existing_mean"] = float(table[: res.index].norm(dim=1).mean())
        row["conversions"] = len(sources)
        rows.append(row)
        log(json.dumps({k: row[k] for k in row if not k.endswith("_names")}))
    report = {
        "model": str(args.model),
        "sources": list(SOURCES),
        "candidates": len(refs) + 1,
        "steps": args.steps,
        "seed": args.seed,
        "rows": rows,
        "seconds": round(time.monotonic() - t0),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{'voice':<24} {'enrol s':>7} {'nearest existing':<22} {'cos nearest':>11} {'cos mean':>8} "
        f"{'cos enrolled':>12} {'identified (n/m/e)':>18} {'NLL bits before/after':>22}"
    )
    for r in rows:
        ident = f"{r['nearest_identified']}/{r['mean_identified']}/{r['enrolled_identified']} of {r['conversions']}"
        print(
            f"{r['voice']:<24} {r['enrol_seconds']:>7.1f} {r['nearest']:<22} {r['nearest_cosine']:>11.3f} "
            f"{r['mean_cosine']:>8.3f} {r['enrolled_cosine']:>12.3f} {ident:>18} "
            f"{r['bits_before']:>10.3f} / {r['bits_after']:.3f}"
        )
    print("held-out NLL of the reference audio (bits/sample), nearest / mean / enrolled row:")
    for r in rows:
        print(
            f"  {r['voice']}: {r['nearest_heldout_bits']:.3f} / {r['mean_heldout_bits']:.3f} / "
            f"{r['enrolled_heldout_bits']:.3f}; row norm {r['row_norm_enrolled']:.2f} "
            f"(existing rows: {r['row_norm_existing_mean']:.2f})"
        )


if __name__ == "__main__":
    main()
