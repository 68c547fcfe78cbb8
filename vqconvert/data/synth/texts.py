"""The corpus text: plain sentences from the Debian `fortunes` package, in a fixed per-voice order."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from pathlib import Path

from vqconvert.data.synth.voices import INSTALL_HINT
from vqconvert.errors import DataError

FORTUNE_DIR = Path("/usr/share/games/fortunes")
# Files of the Debian `fortunes` package (plus `fortunes` itself, from `fortunes-min`) used as text.
# Left out: ASCII art, definitions, code-heavy (perl, linux, debian, computers jargon is kept), headline
# and nonsense collections (news, zippy), and the ones with ethnic, political or drug jokes.
FORTUNE_FILES: tuple[str, ...] = (
    "fortunes",
    "literature",
    "wisdom",
    "science",
    "education",
    "food",
    "pets",
    "kids",
    "sports",
    "work",
    "people",
    "platitudes",
    "medicine",
    "humorists",
    "love",
    "paradoxum",
    "goedel",
    "magic",
    "tao",
    "songs-poems",
    "miscellaneous",
    "computers",
    "cookie",
)
MIN_WORDS, MAX_WORDS = 3, 20
_ABBREV = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|Wm|Prof|Gen|Col|Capt|Lt|Rev|Inc|Ltd|Co|No|Mt|ie|eg|[A-Z])\.$")
_PLAIN = re.compile(r"^[A-Z][A-Za-z ,.'?!;:-]*[.?!]$")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def _fortune_entries(path: Path) -> Iterable[list[str]]:
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() == "%":
            yield lines
            lines = []
        else:
            lines.append(line)
    if lines:
        yield lines


def _sentences_of(text: str) -> list[str]:
    parts: list[str] = []
    for piece in _SPLIT.split(text):
        if parts and _ABBREV.search(parts[-1]):
            parts[-1] += " " + piece
        else:
            parts.append(piece)
    return parts


def plain_sentence(s: str) -> bool:
    """ASCII letters and , . ' ? ! ; : - only, 3-20 words, capitalised, ending in . ? or !, no
    acronyms or abbreviations (engines read those differently), no ellipses or dashes."""
    if not _PLAIN.match(s) or "--" in s or ".." in s or re.search(r"[.?!;:,][A-Za-z]", s):
        return False
    words = s.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    for w in words:
        core = w.strip(",.'?!;:-")
        if len(core) > 1 and core.isupper():
            return False
        if w.startswith(("'", "-")) or w.endswith("-"):
            return False
    return not _ABBREV.search(s.rsplit(" ", 1)[-1]) and "." not in s[:-1]


def load_sentences(fortune_dir: Path | None = None) -> list[str]:
    """The corpus sentences, in a fixed order (file order, then entry order), duplicates removed."""
    root = Path(fortune_dir) if fortune_dir is not None else FORTUNE_DIR
    missing = [f for f in FORTUNE_FILES if not (root / f).is_file()]
    if missing:
        raise DataError(
            f"the text source (Debian package `fortunes`) is missing: no {root / missing[0]}; {INSTALL_HINT}"
        )
    out: list[str] = []
    seen: set[str] = set()
    for name in FORTUNE_FILES:
        for entry in _fortune_entries(root / name):
            body = [ln.strip() for ln in entry if not ln.strip().startswith("--")]
            text = " ".join(" ".join(body).split())
            for s in _sentences_of(text):
                s = s.strip()
                key = s.lower()
                if plain_sentence(s) and key not in seen:
                    seen.add(key)
                    out.append(s)
    return out


def sentence_order(n_sentences: int, voice_name: str, seed: int) -> list[int]:
    """A permutation of sentence indices, fixed by (seed, voice): a longer corpus extends a shorter one."""
    digest = hashlib.sha256(f"vqconvert-synth:{seed}:{voice_name}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    order = list(range(n_sentences))
    rng.shuffle(order)
    return order
