"""`vqconvert analyze`: what a model's codes mean on the synthetic corpus: code-phoneme accuracy against
chance (phoneme timings from the synthesizers) and how much the codes of a sentence depend on the voice."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from vqconvert.cli.common import ModelOpt, fail
from vqconvert.cli.enroll_cmd import ThreadsOpt, set_threads


class _Codes:
    """An utterance's codes: from `--codes DIR/<speaker>/<stem>.vqc` when there, else encoded now; cached."""

    def __init__(self, loaded, corpus: Path, codes_dir: Path | None) -> None:
        self.loaded, self.corpus, self.codes_dir = loaded, corpus, codes_dir
        self.cache: dict[str, object] = {}
        self.encoded = self.read = 0

    def wav(self, name: str) -> Path:
        return self.corpus / name.rsplit("_", 1)[0] / f"{name}.wav"

    def __call__(self, name: str):
        if name in self.cache:
            return self.cache[name]
        from vqconvert.audio import load_audio
        from vqconvert.codes import CodesFile
        from vqconvert.inference import encode_audio

        vqc = self.codes_dir / name.rsplit("_", 1)[0] / f"{name}.vqc" if self.codes_dir else None
        if vqc is not None and vqc.is_file():
            cf = CodesFile.load(vqc)
            cf.check_compatible(self.loaded, str(vqc))
            codes = cf.indices.astype("int64")
            self.read += 1
        else:
            audio = load_audio(self.wav(name), self.loaded.config.sample_rate)
            codes = encode_audio(self.loaded.model, audio).numpy()
            self.encoded += 1
        self.cache[name] = codes
        return codes


def _frames(path: Path, hop: int, rate: int) -> int:
    import soundfile as sf

    info = sf.info(str(path))
    return max(1, math.ceil(info.frames * rate / info.samplerate / hop))


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def report_text(rep: dict) -> str:
    lines = [
        f"model {rep['model']} (fingerprint {rep['fingerprint']}, K={rep['codebook_size']}); corpus {rep['corpus']}; "
        f"{rep['per_voice']} utterances per voice; silence {'kept' if rep['include_silence'] else 'left out'}",
        "",
        "code-phoneme accuracy (each code -> its most frequent phoneme; 4 ms frames)",
        f"{'phone set':<10} {'voices':>6} {'utts':>5} {'frames':>8} {'phones':>6} {'codes':>5} "
        f"{'in-sample':>9} {'held-out':>8} {'chance: majority':>16} {'shuffled':>8}",
    ]
    for name, a in rep["phonemes"].items():
        if not a.get("frames"):
            continue
        lines.append(
            f"{name:<10} {len(a['voices']):>6} {a['utterances']:>5} {a['frames']:>8} {a['phones']:>6} "
            f"{a['codes_used']:>5} {_pct(a['accuracy']):>9} {_pct(a.get('heldout_accuracy')):>8} "
            f"{_pct(a['chance_majority']) + ' (' + a['majority_phone'] + ')':>16} {_pct(a['chance_shuffled']):>8}"
        )
    si = rep["speaker_independence"]
    lines += [
        "",
        f"speaker independence: {si['pairs']} sentences said by two voices ({si['speaker_pairs']} voice pairs); "
        "edit distance of the code sequences / longer length",
        f"  same sentence {_num(si['same_raw'])}, different sentence {_num(si['diff_raw'])}; "
        f"runs of a code merged: {_num(si['same_merged'])} vs {_num(si['diff_merged'])} "
        f"(merging keeps {_pct(si['merged_length_ratio'])} of the codes)",
    ]
    if si.get("same_closer_than_different") is not None:
        lines.append(
            f"  same sentence closer than the different one for {_pct(si['same_closer_than_different'])} of pairs"
        )
    if rep.get("skipped"):
        lines.append(f"skipped (timings do not fit the audio): {', '.join(rep['skipped'][:8])}")
    return "\n".join(lines) + "\n"


def analyze_cmd(
    corpus: Annotated[Path, typer.Argument(help="The synthetic corpus (`make corpus`: corpus/synth).")],
    model: ModelOpt = None,
    codes: Annotated[
        Path | None,
        typer.Option("--codes", help="Codes made by `vqconvert encode CORPUS --out-dir DIR` (else encoded here)."),
    ] = None,
    per_voice: Annotated[int, typer.Option("--per-voice", min=1, help="Utterances per voice (the first N).")] = 40,
    voices: Annotated[str | None, typer.Option("--voices", help="Comma-separated speakers (default: all).")] = None,
    pairs_per_voice_pair: Annotated[
        int, typer.Option("--pairs", min=0, help="Shared sentences per pair of voices (0 = skip that part).")
    ] = 2,
    include_silence: Annotated[bool, typer.Option("--include-silence", help="Also score silence frames.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the JSON report here.")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite --output.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the shuffled-codes chance level.")] = 0,
    threads: ThreadsOpt = 0,
) -> None:
    """Code-phoneme analysis of a model on the synthetic corpus (the paper's section 4.3).

    Phoneme timings come from re-rendering each transcript with its synthesizer (flite -psdur, festival's
    Segment relation, espeak-ng's phoneme events); an utterance whose timings do not fit its audio is
    skipped. Prints the most-frequent-phoneme accuracy of the codes per phone set (CMU for flite and
    festival, espeak-ng's own) against chance, and the edit distance between the code sequences of the
    same sentence said by two voices against two different sentences.
    """
    from vqconvert.analysis import (
        LabelledUtterance,
        code_phone_accuracy,
        per_code_purity,
        round_robin,
        shared_sentences,
        speaker_independence,
    )
    from vqconvert.cli.loading import load_cli_model
    from vqconvert.data.synth.phonemes import SILENCE, corpus_voice, frame_labels, phone_set, phoneme_segments
    from vqconvert.errors import VQConvertError
    from vqconvert.fileio import check_output, write_output

    set_threads(threads)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if output is not None:
        try:
            check_output(output, force, " (use --force)")
        except VQConvertError as err:
            fail(str(err))
    if not corpus.is_dir():
        fail(f"{corpus}: not a directory")
    loaded = load_cli_model(model, "cpu")
    cfg = loaded.config
    hop_s = cfg.hop / cfg.sample_rate
    try:
        manifest_voices = [v["name"] for v in json.loads((corpus / "corpus.json").read_text())["voices"]]
    except (OSError, ValueError, KeyError, TypeError):
        fail(f"{corpus}: no readable corpus.json: analyze needs a synthetic corpus (`vqconvert corpus synth`)")
    names = [v.strip() for v in voices.split(",") if v.strip()] if voices else manifest_voices
    try:
        chosen = [corpus_voice(corpus, n) for n in names]
        get = _Codes(loaded, corpus, codes)
        transcripts, lengths = {}, {}
        for v in chosen:
            for txt in sorted((corpus / v.name).glob(f"{v.name}_*.txt")):
                wav = txt.with_suffix(".wav")
                if wav.is_file():
                    transcripts[txt.stem] = (v.name, txt.read_text(encoding="utf-8").strip())
                    lengths[txt.stem] = _frames(wav, cfg.hop, cfg.sample_rate)
        by_set: dict[str, list] = {}
        set_voices: dict[str, list[str]] = {}
        skipped = []
        for v in chosen:
            stems = sorted(n for n, (s, _) in transcripts.items() if s == v.name)[:per_voice]
            if not stems:
                fail(f"{corpus / v.name}: no utterances (.wav with .txt)")
            segs = phoneme_segments(v, [transcripts[n][1] for n in stems])
            for name, seg in zip(stems, segs, strict=True):
                c = get(name)
                seconds = lengths[name] * hop_s
                slack = seconds - seg[-1].end  # espeak-ng's command line adds a final pause
                if not (-0.06 <= slack <= (0.5 if v.engine == "espeak-ng" else 0.1)):
                    skipped.append(name)
                    continue
                labels = frame_labels(seg, len(c), hop_s)
                keep = [i for i, p in enumerate(labels) if p is not None and (include_silence or p not in SILENCE)]
                ps = phone_set(v)
                by_set.setdefault(ps, []).append(
                    LabelledUtterance(name, v.name, ps, c[keep], [labels[i] for i in keep])
                )
            set_voices.setdefault(phone_set(v), []).append(v.name)
            say(f"analyze: {v.name}: {len(stems)} utterances labelled")
        phon = {}
        for ps, utts in by_set.items():
            phon[ps] = {"voices": set_voices[ps], **code_phone_accuracy(utts, seed), "top_codes": per_code_purity(utts)}
        pairs = round_robin(shared_sentences(transcripts), pairs_per_voice_pair) if pairs_per_voice_pair else []
        say(f"analyze: {len(pairs)} shared sentences; edit distances")
        si = speaker_independence(pairs, get, transcripts, lengths)
    except VQConvertError as err:
        fail(str(err))
    rep = {
        "model": str(loaded.path),
        "fingerprint": loaded.fingerprint,
        "codebook_size": cfg.codebook_size,
        "corpus": str(corpus),
        "per_voice": per_voice,
        "include_silence": include_silence,
        "phonemes": phon,
        "speaker_independence": si,
        "skipped": skipped,
        "codes_read": get.read,
        "codes_encoded": get.encoded,
    }
    text = json.dumps(rep, indent=2) + "\n"
    if output is not None:
        try:
            write_output(output, text.encode(), overwrite=force, hint=" (use --force)")
        except VQConvertError as err:
            fail(str(err))
    sys.stdout.write(text if as_json else report_text(rep))


def register(app: typer.Typer) -> None:
    """Add `analyze` to `app`."""
    app.command("analyze")(analyze_cmd)
