"""Real-speech intelligibility (issue 14): pocketsphinx WER of real recorded speech, of its
reconstruction and of its conversions, on the clips with transcripts of Debian's pocketsphinx-testdata.

    python bench/real_speech.py [--model PATH] [--data DIR] [--targets flite-slt,flite-awb]
        [--temperature T] [--seed S] [--out-dir DIR] [--max-seconds S] [--json PATH]

Clips: every subfolder of --data (default /usr/share/pocketsphinx/test/data, `make eval-deps` installs
it) with a `*fileids` and a `*transcription` file whose ids name a .wav beside them: cards/001-005
(one speaker reading card names) and librivox/*.wav (a LibriVox reader of Sense and Sensibility), 10
clips of 1-7 s. tidigits/ (digit strings, .raw/.mfc only) is excluded, and so is every .raw file.

Per clip, each against the reference transcript (normalised as the WER judge normalises its texts):
  - src WER: the recogniser on the clip itself, its floor on this speech;
  - recon WER / STOI: encode, decode in the model's closest speaker (the readers are unseen): per
    folder (each is one reader), the speaker under which the decoder's teacher-forced NLL of that
    reader's clips is lowest (`vqconvert.enroll.score`, 3 s of 0.25 s windows spread over the folder's
    clips, every speaker on the same windows; --closest-seconds, --closest-per clip), or
    --recon-speaker NAME;
  - one WER per --targets voice: the clip converted to that voice.
Encoding and decoding run through `vqconvert.inference.encode_audio` and `vqconvert.decoding.decode_codes`
with `SamplingOptions` (what `vqconvert transfer` runs); the recogniser and STOI are
`vqconvert.evaluation.judges` (`Transcriber`, `stoi`). "all" rows: corpus WER (total errors / total
reference words) and the mean STOI; "mean" rows: the mean of the per-clip WERs.

--max-seconds S keeps the first S seconds of each clip; the words after the cut then count as deletions
in every column alike, the source's included, so compare columns with each other, not with full-clip runs.
Exit 1 with one line on stderr when the data folder (or a judge) is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ps_testdata.py beside this script
from ps_testdata import DEFAULT_DATA, EXCLUDED, Clip, list_clips, parse_fileids, parse_transcription  # noqa: E402, F401

DEFAULT_TARGETS = "flite-slt,flite-awb"
CLOSEST_SECONDS = 3.0  # speech of a reader scored per speaker when picking the closest speaker
WINDOW_SECONDS = 0.25  # teacher-forced windows, as `vqconvert enroll` scores


def _spread(frames_total: int, frames: int, count: int) -> list[int]:
    """Start frames of up to `count` windows of `frames` frames, evenly spread over `frames_total`."""
    last = frames_total - frames
    if last < 0:
        return []
    count = max(1, min(count, last // frames + 1))
    return [round(last * k / max(count - 1, 1)) for k in range(count)]


def closest_speaker(
    loaded, clips: list, seconds: float = CLOSEST_SECONDS, candidates: list[int] | None = None
) -> tuple[int, float]:
    """(speaker index, bits/sample): the model's speaker under which the decoder's teacher-forced NLL of
    `clips` ((T,) float32 arrays of one voice) is lowest. The clips go through
    `vqconvert.enroll.prepare_clips` (silence trimmed, encoded); every speaker is scored by
    `vqconvert.enroll.score` on the same `seconds` of windows of 0.25 s, spread evenly over the clips.
    `candidates`: the speaker indices to choose from (default: all)."""
    import math

    from vqconvert.enroll import prepare_clips, score

    model = loaded.model
    items = prepare_clips(model, clips)
    frames = max(1, min(round(WINDOW_SECONDS * model.cfg.sample_rate / model.cfg.hop), *(c.numel() for c, _ in items)))
    per_clip = max(1, math.ceil(seconds / WINDOW_SECONDS / len(items)))
    windows = [(i, s) for i, (c, _) in enumerate(items) for s in _spread(c.numel(), frames, per_clip)]
    scores = {j: score(model, items, windows, frames, j, batch=8) for j in candidates or range(len(loaded.speakers))}
    best = min(scores, key=scores.__getitem__)
    return best, scores[best]


def _f(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint or run directory (default: $VQCONVERT_MODEL, else the shipped model)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"pocketsphinx test data (default {DEFAULT_DATA})")
    ap.add_argument("--targets", default=DEFAULT_TARGETS, help=f"comma-separated voices (default {DEFAULT_TARGETS})")
    ap.add_argument("--recon-speaker", default="closest", help="voice of the reconstruction (default: closest)")
    ap.add_argument(
        "--closest-seconds", type=float, default=CLOSEST_SECONDS, help="speech scored per speaker for 'closest'"
    )
    ap.add_argument(
        "--closest-per",
        choices=("folder", "clip"),
        default="folder",
        help="pick the closest speaker per folder (one reader each: pooled clips) or per clip",
    )
    ap.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the CLI's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="auto", help="generator backend: auto, c, torch, cuda")
    ap.add_argument("--vocoder", default="wavenet", choices=("wavenet", "griffin-lim"), help="as the CLI's --vocoder")
    ap.add_argument("--mel-net", type=Path, help="mel net for griffin-lim (default: NAME.mel.pt beside the model)")
    ap.add_argument("--out-dir", type=Path, help="keep the source, reconstruction and conversion wavs here")
    ap.add_argument("--max-seconds", type=float, help="keep only the first S seconds of each clip")
    ap.add_argument("--clips", type=int, help="only the first N clips")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    ap.add_argument("--show-text", action="store_true", help="print the reference and every transcript")
    args = ap.parse_args(argv)

    if not args.data.is_dir():
        print(
            f"error: {args.data}: no pocketsphinx test data (install the Debian package pocketsphinx-testdata: "
            "make eval-deps)",
            file=sys.stderr,
        )
        return 1
    clips = list_clips(args.data)[: args.clips]
    if not clips:
        print(f"error: {args.data}: no .wav clips with transcripts found", file=sys.stderr)
        return 1

    import numpy as np

    from vqconvert.audio import load_audio, save_wav
    from vqconvert.checkpoint import load_model
    from vqconvert.decoding import decode_codes
    from vqconvert.errors import VQConvertError
    from vqconvert.evaluation.judges import Transcriber, stoi, word_error_rate
    from vqconvert.inference import encode_audio, transfer_targets
    from vqconvert.melnet.store import default_melnet_path, load_melnet
    from vqconvert.sampling import SamplingOptions
    from vqconvert.shipped import default_model

    t_start = time.monotonic()
    try:
        asr = Transcriber()
        stoi(np.zeros(16000, np.float32), np.zeros(16000, np.float32))  # fails now if pystoi is missing
        model_path = args.model or default_model()
        loaded = load_model(model_path)
        targets = transfer_targets(loaded, [t.strip() for t in args.targets.split(",") if t.strip()])
        fixed = None if args.recon_speaker == "closest" else loaded.speaker_index(args.recon_speaker)
        mel_net = None
        if args.vocoder == "griffin-lim" and (args.mel_net or default_melnet_path(loaded.path).is_file()):
            mel_net = load_melnet(args.mel_net or default_melnet_path(loaded.path))
            mel_net.check_model(loaded)
    except VQConvertError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    sampling = SamplingOptions(seed=args.seed, backend=args.backend)
    if args.temperature is not None:
        sampling = sampling.replace(temperature=args.temperature)
    rate = loaded.config.sample_rate
    labels = [label for label, _ in targets]

    audios, full = {}, {}
    for clip in clips:
        audio = load_audio(clip.path, rate)
        full[clip.name] = audio.shape[0] / rate
        audios[clip.name] = audio[: int(args.max_seconds * rate)] if args.max_seconds else audio
    recon_voice: dict[str, tuple[int, float | None]] = {}  # clip -> (speaker, its bits/sample)
    if fixed is None:
        groups: dict[str, list[Clip]] = {}
        for clip in clips:
            groups.setdefault(clip.name if args.closest_per == "clip" else clip.name.split("/")[0], []).append(clip)
        # a mel net renders only the voices it learnt: the closest is chosen among those
        learnt = None if mel_net is None else [int(j) for j in mel_net.net.learnt.nonzero().flatten()]
        for group, members in groups.items():
            t0 = time.monotonic()
            choice = closest_speaker(loaded, [audios[c.name] for c in members], args.closest_seconds, learnt)
            recon_voice.update({c.name: choice for c in members})
            print(
                f"closest speaker of {group} ({len(members)} clips): {loaded.speakers[choice[0]]} "
                f"({choice[1]:.3f} bits/sample), {time.monotonic() - t0:.0f} s",
                file=sys.stderr,
            )
    else:
        recon_voice = {c.name: (fixed, None) for c in clips}

    rows = []
    for n, clip in enumerate(clips, 1):
        t0 = time.monotonic()
        audio, full_s = audios[clip.name], full[clip.name]
        recon_idx, recon_bits = recon_voice[clip.name]
        codes = encode_audio(loaded.model, audio)
        voices = [recon_idx] + [i for _, i in targets]
        outs = decode_codes(
            loaded.model,
            [codes] * len(voices),
            voices,
            sampling,
            batch_size=len(voices),
            samples=[audio.shape[0]] * len(voices),
            vocoder=args.vocoder,
            mel_net=None if mel_net is None else mel_net.net,
        )
        hyps = {"source": asr.transcribe(audio), "recon": asr.transcribe(outs[0])}
        hyps.update({label: asr.transcribe(o) for label, o in zip(labels, outs[1:], strict=True)})
        row = {
            "clip": clip.name,
            "seconds": round(audio.shape[0] / rate, 3),
            "full_seconds": round(full_s, 3),
            "words": len(clip.text.split()),
            "recon_speaker": loaded.speakers[recon_idx],
            "recon_speaker_bits": recon_bits,
            "reference": clip.text,
            "hyps": hyps,
            "wer": {k: word_error_rate([clip.text], [h]) for k, h in hyps.items()},
            "recon_stoi": stoi(audio, outs[0], rate),
            "wall_s": round(time.monotonic() - t0, 1),
        }
        rows.append(row)
        print(
            f"[{n}/{len(clips)}] {clip.name}: {row['seconds']:.2f} s, src WER {_f(row['wer']['source']['wer'])}, "
            f"recon WER {_f(row['wer']['recon']['wer'])} ({row['recon_speaker']}), {row['wall_s']:.0f} s",
            file=sys.stderr,
        )
        if args.out_dir:
            d = args.out_dir / clip.name.replace("/", "_")
            d.mkdir(parents=True, exist_ok=True)
            save_wav(d / "source.wav", audio, rate, overwrite=True)
            save_wav(d / f"recon.{row['recon_speaker']}.wav", outs[0], rate, overwrite=True)
            for label, o in zip(labels, outs[1:], strict=True):
                save_wav(d / f"to.{label}.wav", o, rate, overwrite=True)

    keys = ["source", "recon"] + labels
    head = [
        "clip",
        "s",
        "words",
        "closest speaker" if fixed is None else "recon speaker",
        "src WER",
        "recon WER",
        "recon STOI",
    ] + [f"->{label} WER" for label in labels]
    print("# real-speech WER (pocketsphinx-testdata)\n")
    print("command: " + " ".join(shlex.quote(a) for a in [sys.executable.split("/")[-1], *sys.argv]))
    print(
        f"model: {model_path} (step {loaded.step}, fingerprint {loaded.fingerprint}), "
        f"temperature {sampling.temperature}, seed {sampling.seed}, backend {sampling.backend}, "
        f"{len(rows)} clips, {sum(r['seconds'] for r in rows):.1f} s of audio"
        + (f" (cut to the first {args.max_seconds:g} s each)" if args.max_seconds else "")
    )
    if fixed is None:
        print(
            f"reconstruction voice: the model's closest speaker per {args.closest_per} (lowest teacher-forced "
            f"NLL over {args.closest_seconds:g} s of the {args.closest_per}'s speech)"
        )
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r["clip"], f"{r['seconds']:.2f}", str(r["words"]), r["recon_speaker"]]
        cells += [_f(r["wer"]["source"]["wer"]), _f(r["wer"]["recon"]["wer"]), _f(r["recon_stoi"])]
        cells += [_f(r["wer"][k]["wer"]) for k in labels]
        print("| " + " | ".join(cells) + " |")
    stois = [r["recon_stoi"] for r in rows if r["recon_stoi"] is not None]
    mean_stoi = sum(stois) / len(stois) if stois else None
    corpus = {k: word_error_rate([r["reference"] for r in rows], [r["hyps"][k] for r in rows]) for k in keys}
    per_clip = {k: [r["wer"][k]["wer"] for r in rows if r["wer"][k]["wer"] is not None] for k in keys}
    means = {k: (sum(v) / len(v) if v else None) for k, v in per_clip.items()}
    words = sum(r["words"] for r in rows)
    for name, table in (("**all** (corpus WER)", corpus), ("**mean** of clips", None)):
        cells = [name, f"{sum(r['seconds'] for r in rows):.1f}", str(words), ""]
        vals = [table[k]["wer"] for k in keys] if table is not None else [means[k] for k in keys]
        cells += [_f(vals[0]), _f(vals[1]), _f(mean_stoi)] + [_f(v) for v in vals[2:]]
        print("| " + " | ".join(cells) + " |")
    wall = time.monotonic() - t_start
    print()
    print(
        f"recogniser timeouts (babble decoded past {asr.max_realtime:g}x real time, cut): {asr.timeouts}; "
        f"wall {wall:.0f} s, load average {os.getloadavg()[0]:.1f}, OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    if args.show_text:
        print()
        for r in rows:
            print(f"{r['clip']}\n  ref:    {r['reference']}")
            for k in keys:
                print(f"  {k + ':':<7} {r['hyps'][k]}")
    if args.json:
        summary = {"corpus_wer": {k: corpus[k]["wer"] for k in keys}, "mean_wer": means, "mean_recon_stoi": mean_stoi}
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"data": str(args.data)}, "summary": summary, "rows": rows}, indent=1, default=str
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
