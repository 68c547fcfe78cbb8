"""Synthesizer voices: the default list, which are installed, resolving names, engine versions."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from vqconvert.errors import DataError

INSTALL_HINT = (
    "run `make synth-deps` (as root), or install the Debian packages yourself: "
    "apt-get install espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts fortunes"
)


ENGINES = ("espeak-ng", "flite", "festival")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: `name` is the speaker id, `spec` the engine's own voice name."""

    name: str
    engine: str
    spec: str


def espeak_voice(spec: str) -> Voice:
    """`en-us+m3` -> Voice('espeak-en-us-m3', 'espeak-ng', 'en-us+m3')."""
    return Voice("espeak-" + re.sub(r"[^a-z0-9]+", "-", spec.lower()).strip("-"), "espeak-ng", spec)


# The default espeak-ng voices: one accent + voice variant each, chosen by measurement with
# `measure_voices` (the 4 MEASURE_TEXTS per voice, 16 kHz). Each voice is described by its median f0
# (librosa.pyin) and its mean MFCC 1-19 over non-silent frames; two voices count as near-identical when
# the mean-MFCC distance is < 25 and the f0 differs by < 2.5 semitones (espeak-ng 1.51 variants that
# differ only in minor parameters measure 0-24: klatt = klatt6 = caleb 0.0, steph/steph2 7.7,
# klatt/klatt2 15.7; different voices measure 30-200, median 88). Of the 101 variants rendered with
# en-us, 94 speech-like ones (robosoft*, UniRobot, anikaRobot, announcer, Demonic, Tweaky, croak, fast
# and "Mr serious" left out) fall into 68 groups; from distinct groups 6 male, 5 female and 1 whisper
# voice were kept, spread over six espeak-ng English accents for accent variety (as VCTK has). Nearest
# pairs in the final 18-voice set: festival-kal/festival-ked 28.1 (0.0 st), espeak-en-us-m3/
# espeak-en-m1 37.3 (1.8 st), flite-slt/festival-slt 37.5 (0.1 st; the same SLT recordings through two
# synthesis methods). data/README.md has the table.
ESPEAK_DEFAULT: tuple[str, ...] = (
    "en-us+m3",
    "en-us+f2",
    "en-us+klatt",
    "en-us+whisperf",
    "en+m1",  # espeak-ng's "en" is British English; "en-gb+VARIANT" silently ignores the variant
    "en+f4",
    "en-gb-x-rp+m7",
    "en-gb-x-rp+steph",
    "en-gb-scotland+m8",
    "en-029+f5",
    "en-us-nyc+david",
    "en-gb-x-gbclan+shelby",
)

# flite's built-in voices. Left out: `kal16`, near-identical to festival's kal_diphone (the same Kal
# diphones: mean-MFCC distance 7.4, f0 2.0 semitones apart); `kal`, the same diphones at 8 kHz (same
# f0, MFCC distance 61 from kal16 only from the missing 4-8 kHz band); `awb_time`, which only says times.
FLITE_DEFAULT: tuple[str, ...] = ("awb", "rms", "slt")

# festival's English voices in Debian 12 main, by speaker name -> festival voice name. (rab_diphone,
# festvox-rablpc16k, is not in Debian 12; other installed voices can be asked for as festival:NAME.)
FESTIVAL_KNOWN: dict[str, str] = {
    "festival-kal": "kal_diphone",  # festvox-kallpc16k
    "festival-ked": "ked_diphone",  # festvox-kdlpc16k
    "festival-slt": "cmu_us_slt_arctic_hts",  # festvox-us-slt-hts (32 kHz, resampled)
}


def default_voices() -> list[Voice]:
    """The fixed default voice list, installed or not, in corpus order."""
    out = [espeak_voice(s) for s in ESPEAK_DEFAULT]
    out += [Voice(f"flite-{v}", "flite", v) for v in FLITE_DEFAULT]
    out += [Voice(name, "festival", spec) for name, spec in FESTIVAL_KNOWN.items()]
    return out


def run_command(cmd: Sequence[str], input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a synthesizer command, capturing its output; DataError when it is missing or hangs."""
    try:
        return subprocess.run(
            list(cmd),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise DataError(f"{cmd[0]} is not installed; {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise DataError(f"{cmd[0]} did not finish within {timeout:.0f} s") from None


def engine_installed(engine: str) -> bool:
    return shutil.which(engine) is not None


@lru_cache(maxsize=8)
def _espeak_variants(path_key: str) -> frozenset[str]:
    res = run_command(["espeak-ng", "--voices=variant"])
    names = set()
    for line in res.stdout.splitlines()[1:]:
        m = re.search(r"!v/(\S+)", line)
        if m:
            names.add(m.group(1))
    return frozenset(names)


@lru_cache(maxsize=8)
def _espeak_languages(path_key: str) -> frozenset[str]:
    res = run_command(["espeak-ng", "--voices"])
    names = set()
    for line in res.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 1:
            names.add(fields[1])  # the language column
        names.update(re.findall(r"\((\S+) \d+\)", line))  # "other languages": (en 2)
    return frozenset(names)


@lru_cache(maxsize=8)
def _flite_voices(path_key: str) -> frozenset[str]:
    res = run_command(["flite", "-lv"])
    text = res.stdout + res.stderr
    return frozenset(text.split(":", 1)[1].split()) if ":" in text else frozenset()


@lru_cache(maxsize=8)
def _festival_voices(path_key: str) -> frozenset[str]:
    res = run_command(["festival", "-b", "(print (voice.list))"])
    return frozenset(res.stdout.strip().strip("()").split())


def _path_key() -> str:
    return os.environ.get("PATH", "")


def voice_installed(voice: Voice) -> bool:
    """Whether the engine and this voice of it are installed."""
    if not engine_installed(voice.engine):
        return False
    key = _path_key()
    try:
        if voice.engine == "espeak-ng":
            lang, _, variant = voice.spec.partition("+")
            return lang in _espeak_languages(key) and (not variant or variant in _espeak_variants(key))
        if voice.engine == "flite":
            return voice.spec in _flite_voices(key)
        if voice.engine == "festival":
            return voice.spec in _festival_voices(key)
    except DataError:
        return False
    return False


def available_voices() -> list[Voice]:
    """The default voices that are installed here, in corpus order."""
    return [v for v in default_voices() if voice_installed(v)]


def resolve_voice(name: str) -> Voice:
    """A default voice by speaker name, or any engine voice as `espeak-ng:en-gb+f3`, `flite:slt`,
    `festival:kal_diphone`."""
    for v in default_voices():
        if v.name == name:
            return v
    engine, sep, spec = name.partition(":")
    if sep and spec:
        engine = {"espeak": "espeak-ng"}.get(engine, engine)
        if engine == "espeak-ng":
            return espeak_voice(spec)
        if engine == "flite":
            return Voice(f"flite-{spec}", "flite", spec)
        if engine == "festival":
            short = spec.removesuffix("_diphone")
            return Voice(f"festival-{re.sub(r'[^a-z0-9]+', '-', short.lower())}", "festival", spec)
    known = ", ".join(v.name for v in default_voices())
    raise DataError(
        f"unknown voice {name!r}: use one of {known}, or ENGINE:VOICE with ENGINE espeak-ng, flite or festival"
    )


def engine_versions(engines: Iterable[str]) -> dict[str, str]:
    """`--version` lines of the engines (and their Debian package versions where dpkg knows them)."""
    out = {}
    for engine in sorted(set(engines)):
        if engine == "espeak-ng":
            text = run_command(["espeak-ng", "--version"]).stdout
            m = re.search(r"text-to-speech:\s*(\S+)", text)
        elif engine == "flite":
            text = run_command(["flite", "--version"]).stdout
            m = re.search(r"version:\s*(\S+)", text)
        else:
            text = run_command(["festival", "--version"]).stdout
            m = re.search(r"System:\s*(\S+)", text)
        out[engine] = m.group(1) if m else " ".join(text.split())[:80]
    return out


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed Debian package versions ({} where dpkg-query is absent)."""
    if not shutil.which("dpkg-query"):
        return {}
    out = {}
    for pkg in packages:
        res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=False)
        if res.returncode == 0 and res.stdout.strip():
            out[pkg] = res.stdout.strip()
    return out


PACKAGES = {
    "espeak-ng": ("espeak-ng", "espeak-ng-data"),
    "flite": ("flite",),
    "festival": ("festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts"),
}
