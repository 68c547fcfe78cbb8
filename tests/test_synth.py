"""The synthetic corpus builder: text extraction, layout, 16 kHz output, determinism, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from vqconvert.data import synth
from vqconvert.errors import DataError

# Fortune-file text in the package's format: entries split by "%", attributions on "--" lines.
FORTUNE_TEXT = """\
A banker is a fellow who lends you his umbrella when the sun is shining
and wants it back the minute it begins to rain.
		-- Mark Twain
%
Be cautious in your daily affairs.  Mr. Smith said so twice.
%
IBM will never sell you a computer.  Too short.  Look at me!
%
The wages of sin are high but you get your money's worth... maybe.
%
Friendship needs a certain parallelism of life, a community of thought, a rivalry of aim.
%
Be cautious in your daily affairs.
%
You will never know hunger.  When you go out into the world, watch for traffic.
"""


@pytest.fixture
def fortune_dir(tmp_path: Path) -> Path:
    d = tmp_path / "fortunes"
    d.mkdir()
    for i, name in enumerate(synth.FORTUNE_FILES):
        # the same entries in every file: duplicates are dropped, so only the first file counts
        (d / name).write_text(FORTUNE_TEXT if i == 0 else FORTUNE_TEXT.replace("Be cautious", "Be careful"))
    return d


def test_load_sentences_filters_and_dedups(fortune_dir: Path) -> None:
    sents = synth.load_sentences(fortune_dir)
    assert sents[0] == "Be cautious in your daily affairs."  # the banker's 23 words are too many
    assert "Be cautious in your daily affairs." in sents
    assert "Be careful in your daily affairs." in sents  # from the second file
    assert "You will never know hunger." in sents
    assert not any("Twain" in s or "IBM" in s or "Mr." in s or "..." in s for s in sents)
    assert "Too short." not in sents and "Look at me!" in sents  # three words at least
    assert len(sents) == len({s.lower() for s in sents})
    assert all(synth.plain_sentence(s) for s in sents)
    assert synth.load_sentences(fortune_dir) == sents  # fixed order


def test_plain_sentence_rules() -> None:
    assert synth.plain_sentence("Love is in the offing.")
    assert not synth.plain_sentence("Two words.")
    assert not synth.plain_sentence("It costs 5 dollars today.")
    assert not synth.plain_sentence("The NASA team went home.")
    assert not synth.plain_sentence("no capital letter here.")
    assert not synth.plain_sentence(" ".join(["word"] * 21) + ".")


def test_missing_text_source(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fortunes"):
        synth.load_sentences(tmp_path)


def test_sentence_order_is_fixed_and_per_voice() -> None:
    a = synth.sentence_order(500, "espeak-en-us-m3", 0)
    assert a == synth.sentence_order(500, "espeak-en-us-m3", 0)
    assert sorted(a) == list(range(500))
    assert a[:20] != synth.sentence_order(500, "flite-slt", 0)[:20]
    assert a[:20] != synth.sentence_order(500, "espeak-en-us-m3", 1)[:20]


def test_voice_names_and_resolution() -> None:
    names = [v.name for v in synth.default_voices()]
    assert len(names) == len(set(names))
    assert "flite-slt" in names and "festival-kal" in names and "espeak-en-us-m3" in names
    assert synth.resolve_voice("flite-slt") == synth.Voice("flite-slt", "flite", "slt")
    assert synth.resolve_voice("espeak:en-gb+f3") == synth.Voice("espeak-en-gb-f3", "espeak-ng", "en-gb+f3")
    assert synth.resolve_voice("festival:kal_diphone").name == "festival-kal"
    with pytest.raises(DataError, match="unknown voice"):
        synth.resolve_voice("nobody")


def _two_voices() -> list[str]:
    fast = [v for v in synth.available_voices() if v.engine in ("espeak-ng", "flite")]
    if len(fast) < 2:
        pytest.skip("needs espeak-ng or flite (install with `make synth-deps`)")
    # one of each engine where both are there
    by_engine = {v.engine: v.name for v in reversed(fast)}
    picked = list(by_engine.values()) if len(by_engine) == 2 else [fast[0].name, fast[1].name]
    return picked


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_layout_determinism_and_resume(tmp_path: Path, fortune_dir: Path) -> None:
    voices = _two_voices()
    out = tmp_path / "c1"
    kw = dict(utterances_per_voice=2, voices=voices, jobs=2, seed=0, progress=False, fortune_dir=fortune_dir)
    manifest = synth.build_synth_corpus(out, **kw)

    sentences = set(synth.load_sentences(fortune_dir))
    for name in voices:
        wavs = sorted((out / name).glob("*.wav"))
        assert [w.name for w in wavs] == [f"{name}_0000.wav", f"{name}_0001.wav"]
        for w in wavs:
            info = sf.info(str(w))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert info.frames > 16000 // 2
            text = w.with_suffix(".txt").read_text()
            assert text.endswith("\n") and text.strip() in sentences
    assert sorted(p.name for p in out.iterdir()) == sorted([*voices, "corpus.json"])
    assert json.loads((out / "corpus.json").read_text()) == manifest
    assert [v["name"] for v in manifest["voices"]] == voices
    assert manifest["total_utterances"] == 4 and manifest["total_seconds"] > 2
    assert manifest["seed"] == 0 and manifest["text"]["sentences"] == len(sentences)

    # the same inputs give byte-identical files, manifest included
    synth.build_synth_corpus(tmp_path / "c2", **kw)
    first = _files(out)
    assert _files(tmp_path / "c2") == first

    # resume: complete files are kept as they are; a missing one is rendered again, identically
    victim = out / voices[0] / f"{voices[0]}_0001.wav"
    keep = out / voices[1] / f"{voices[1]}_0000.wav"
    mtime = keep.stat().st_mtime_ns
    victim.unlink()
    msgs: list[str] = []
    synth.build_synth_corpus(out, **kw, log=msgs.append)
    assert keep.stat().st_mtime_ns == mtime
    assert any("3 utterances already there" in m for m in msgs)
    assert _files(out) == first


def test_other_seed_in_same_dir_is_refused(tmp_path: Path, fortune_dir: Path) -> None:
    voices = _two_voices()[:1]
    kw = dict(utterances_per_voice=1, voices=voices, progress=False, fortune_dir=fortune_dir)
    synth.build_synth_corpus(tmp_path, seed=0, **kw)
    with pytest.raises(DataError, match="another seed"):
        synth.build_synth_corpus(tmp_path, seed=1, **kw)


def test_missing_synthesizers(tmp_path: Path, fortune_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert synth.available_voices() == []
    kw = dict(utterances_per_voice=1, progress=False, fortune_dir=fortune_dir)
    with pytest.raises(DataError, match="make synth-deps"):
        synth.build_synth_corpus(tmp_path / "out", **kw)
    with pytest.raises(DataError, match="flite is not installed.*make synth-deps"):
        synth.build_synth_corpus(tmp_path / "out", voices=["flite-slt"], **kw)


def test_cli_synth_and_voices(tmp_path: Path, fortune_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from typer.testing import CliRunner

        from vqconvert.cli import app
    except ImportError as err:  # the other subcommand modules are not all there yet
        pytest.skip(f"CLI not importable yet: {err}")
    voices = _two_voices()[:1]
    monkeypatch.setattr(synth.texts, "FORTUNE_DIR", fortune_dir)
    runner = CliRunner()
    res = runner.invoke(app, ["corpus", "synth", str(tmp_path / "c"), "-n", "1", "--voice", voices[0], "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c" / voices[0] / f"{voices[0]}_0000.wav").is_file()
    res = runner.invoke(app, ["corpus", "voices"])
    assert res.exit_code == 0 and voices[0] in res.output
    res = runner.invoke(app, ["corpus", "synth", str(tmp_path / "d"), "--voice", "nobody"])
    assert res.exit_code == 1
    res = runner.invoke(app, ["corpus", "scan", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "generic" in res.output and "1 speakers" in res.output and voices[0] in res.output


def test_engine_failure_is_a_data_error(tmp_path: Path, fortune_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    voices = _two_voices()[:1]

    def broken(voice, texts, paths):
        raise DataError(f"{voice.engine} voice {voice.spec} failed (exit 1): boom")

    monkeypatch.setattr(synth.render, "render_raw", broken)
    with pytest.raises(DataError, match="boom"):
        synth.build_synth_corpus(
            tmp_path, utterances_per_voice=2, voices=voices, progress=False, fortune_dir=fortune_dir
        )
    assert not list(tmp_path.rglob("*.wav")) and not (tmp_path / "corpus.json").exists()
