"""`vqconvert corpus ...`: build the synthetic corpus, list its voices, summarise corpora on disk."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Annotated

import typer

from vqconvert.cli.common import fail, info
from vqconvert.errors import VQConvertError

corpus_app = typer.Typer(
    help="Corpora: build the synthetic multi-speaker corpus, list its voices, summarise corpora.",
    no_args_is_help=True,
)


@corpus_app.command("synth")
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Output directory: OUT/<speaker>/<speaker>_NNNN.wav + .txt.")],
    utterances: Annotated[int, typer.Option("--utterances", "-n", min=1, help="Utterances per voice.")] = 200,
    voice: Annotated[
        list[str] | None,
        typer.Option(
            "--voice",
            "-v",
            help="A voice to render (repeatable): a name from `vqconvert corpus voices`, or ENGINE:VOICE "
            "such as espeak-ng:en-gb-x-rp+f3, flite:slt, festival:kal_diphone. "
            "Default: every installed default voice.",
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Synthesizer processes at once.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Chooses each voice's sentences.")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Render again even the utterances already there.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
) -> None:
    """Render a multi-speaker English corpus with espeak-ng, flite and festival (resumable, reproducible)."""
    from vqconvert.data.synth import build_synth_corpus

    try:
        manifest = build_synth_corpus(
            out_dir,
            utterances_per_voice=utterances,
            voices=voice or None,
            jobs=jobs,
            seed=seed,
            overwrite=overwrite,
            progress=not quiet,
        )
    except VQConvertError as err:
        fail(str(err))
    if not quiet:
        hours = manifest["total_seconds"] / 3600
        info(
            f"{out_dir}: {len(manifest['voices'])} voices, {manifest['total_utterances']} utterances, "
            f"{hours:.2f} h (manifest {Path(out_dir) / 'corpus.json'})"
        )


@corpus_app.command("voices")
def voices() -> None:
    """List the default synthesizer voices and whether each is installed here."""
    from vqconvert.data.synth import INSTALL_HINT, default_voices, voice_installed

    rows = [(v.name, v.engine, v.spec, "yes" if voice_installed(v) else "no") for v in default_voices()]
    header = ("speaker", "engine", "voice", "installed")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if any(r[3] == "no" for r in rows):
        info(f"some voices are not installed: {INSTALL_HINT}")


@corpus_app.command("scan")
def scan(
    data: Annotated[list[Path], typer.Argument(help="Corpus roots (VCTK 0.80, VCTK 0.92 or ROOT/<speaker>/*.wav).")],
    mic: Annotated[str, typer.Option("--mic", help="VCTK 0.92 microphone: mic1 or mic2.")] = "mic1",
    speakers: Annotated[bool, typer.Option("--speakers/--no-speakers", help="One line per speaker.")] = True,
) -> None:
    """Summarise corpora: layout, speakers, utterances, transcripts, hours."""
    from vqconvert.audio import audio_info
    from vqconvert.data.corpus import detect_layout, scan_corpus, speaker_table

    try:
        for root in data:
            layout = detect_layout(root)
            utts = scan_corpus(root, mic=mic, layout=layout)
            spk = speaker_table(utts)
            count: dict[str, int] = defaultdict(int)
            texts: dict[str, int] = defaultdict(int)
            secs: dict[str, float] = defaultdict(float)
            bad = 0
            for u in utts:
                count[u.speaker] += 1
                texts[u.speaker] += u.text is not None
                try:
                    secs[u.speaker] += audio_info(u.path)["duration"]
                except VQConvertError:
                    bad += 1
            total = sum(secs.values())
            typer.echo(
                f"{root}: layout {layout}, {len(spk)} speakers, {len(utts)} utterances "
                f"({sum(texts.values())} with transcripts), {total / 3600:.2f} h"
                + (f", {bad} unreadable" if bad else "")
            )
            if speakers:
                width = max(len(s) for s in spk)
                for s in spk:
                    typer.echo(f"  {s.ljust(width)}  {count[s]:6d} utt  {texts[s]:6d} txt  {secs[s] / 60:8.1f} min")
    except VQConvertError as err:
        fail(str(err))


def register(app: typer.Typer) -> None:
    """Add `corpus` to `app`."""
    app.add_typer(corpus_app, name="corpus")
