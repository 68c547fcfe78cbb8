"""What the codes mean (paper, section 4.3): how well a code predicts the phoneme being spoken, and how
much the code sequence of a sentence depends on who says it. Pure computation: codes and phoneme labels
in, figures out; `vqconvert.cli.analyze_cmd` reads the corpus and prints them.

* Code-phoneme accuracy: every code frame (4 ms) gets the phoneme at its centre; each code is mapped to the
  phoneme it most often co-occurs with; accuracy = frames whose phoneme is their code's phoneme. Measured
  in-sample (mapping fitted and scored on the same frames, as the paper's figure) and held out (fitted on
  half the utterances, scored on the other half). Chance: always answering the most frequent phoneme,
  and the same procedure with each utterance's codes shuffled against its phonemes (a code space that
  carries no phonetic information). Silence frames are left out unless asked for.
* Speaker independence: for sentences that two voices both say, the Levenshtein distance between the two
  code sequences, divided by the longer length; also after merging runs of repeated codes. The reference
  is the same voices saying different sentences of about the same length.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class LabelledUtterance:
    name: str
    speaker: str
    phone_set: str  # labels of different sets are never compared
    codes: np.ndarray  # (F,) code per frame, only frames with a phoneme label
    phones: list[str]  # (F,)


def _fit(utts: Sequence[LabelledUtterance]) -> tuple[dict[int, str], str]:
    counts: dict[int, Counter] = {}
    overall: Counter = Counter()
    for u in utts:
        for c, p in zip(u.codes.tolist(), u.phones, strict=True):
            counts.setdefault(c, Counter())[p] += 1
            overall[p] += 1
    mapping = {c: cnt.most_common(1)[0][0] for c, cnt in counts.items()}
    return mapping, (overall.most_common(1)[0][0] if overall else "")


def _score(utts: Sequence[LabelledUtterance], mapping: dict[int, str], fallback: str) -> tuple[int, int]:
    hits = total = 0
    for u in utts:
        for c, p in zip(u.codes.tolist(), u.phones, strict=True):
            hits += mapping.get(c, fallback) == p
            total += 1
    return hits, total


def _shuffled(utts: Sequence[LabelledUtterance], seed: int) -> list[LabelledUtterance]:
    rng = np.random.default_rng(seed)
    return [LabelledUtterance(u.name, u.speaker, u.phone_set, rng.permutation(u.codes), u.phones) for u in utts]


def split_half(utts: Sequence[LabelledUtterance]) -> tuple[list, list]:
    """A fixed split of utterances into fit / score halves (CRC-32 of the name)."""
    fit, score = [], []
    for u in utts:
        (fit if zlib.crc32(u.name.encode()) % 2 == 0 else score).append(u)
    return fit, score


def code_phone_accuracy(utts: Sequence[LabelledUtterance], seed: int = 0) -> dict:
    """Most-frequent-phoneme accuracy of the codes (utterances of one phone set) against chance."""
    if not utts:
        return {"frames": 0}
    mapping, top = _fit(utts)
    hits, frames = _score(utts, mapping, top)
    phones = Counter(p for u in utts for p in u.phones)
    majority = phones.most_common(1)[0][1] / frames
    shuf = _shuffled(utts, seed)
    smap, stop = _fit(shuf)
    shits, _ = _score(shuf, smap, stop)
    out = {
        "utterances": len(utts),
        "frames": frames,
        "phones": len(phones),
        "codes_used": len(mapping),
        "accuracy": hits / frames,
        "chance_majority": majority,
        "majority_phone": phones.most_common(1)[0][0],
        "chance_shuffled": shits / frames,
    }
    fit, held = split_half(utts)
    if fit and held:
        hmap, htop = _fit(fit)
        h, n = _score(held, hmap, htop)
        sfit, sheld = _shuffled(fit, seed), _shuffled(held, seed + 1)
        smap2, stop2 = _fit(sfit)
        sh, _ = _score(sheld, smap2, stop2)
        out.update(heldout_accuracy=h / n, heldout_frames=n, heldout_chance_shuffled=sh / n)
        out["heldout_chance_majority"] = sum(p == htop for u in held for p in u.phones) / n
    return out


def per_code_purity(utts: Sequence[LabelledUtterance], top: int = 8) -> list[dict]:
    """The most used codes: how often each occurs and the share of its frames on its main phoneme."""
    counts: dict[int, Counter] = {}
    for u in utts:
        for c, p in zip(u.codes.tolist(), u.phones, strict=True):
            counts.setdefault(c, Counter())[p] += 1
    rows = []
    for c, cnt in sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))[:top]:
        n = sum(cnt.values())
        (p1, n1), *rest = cnt.most_common(2)
        rows.append({"code": c, "frames": n, "phone": p1, "share": n1 / n, "second": rest[0][0] if rest else None})
    return rows


# -- speaker independence -----------------------------------------------------------------------------


def edit_distance(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> int:
    """Levenshtein distance (unit costs), a row of the table at a time in numpy."""
    a, b = np.asarray(a), np.asarray(b)
    if a.size == 0 or b.size == 0:
        return int(max(a.size, b.size))
    idx = np.arange(b.size + 1)
    row = idx.copy()
    for i in range(1, a.size + 1):
        sub = row[:-1] + (b != a[i - 1])
        tmp = np.empty_like(row)
        tmp[0] = i
        tmp[1:] = np.minimum(row[1:] + 1, sub)
        row = np.minimum.accumulate(tmp - idx) + idx  # insertions: tmp[k] + (j - k) for k <= j
    return int(row[-1])


def collapse_runs(seq: np.ndarray) -> np.ndarray:
    """Merge runs of a repeated code into one: [5, 5, 7, 7, 7, 5] -> [5, 7, 5]."""
    seq = np.asarray(seq)
    if seq.size == 0:
        return seq
    keep = np.ones(seq.size, bool)
    keep[1:] = seq[1:] != seq[:-1]
    return seq[keep]


def normalized_distance(a: np.ndarray, b: np.ndarray) -> float:
    return edit_distance(a, b) / max(len(a), len(b), 1)


@dataclass
class SentencePair:
    text: str
    a: str  # utterance names
    b: str
    speaker_a: str
    speaker_b: str


def fold(text: str) -> str:
    """A transcript compared case- and space-insensitively."""
    return " ".join(text.lower().split())


def shared_sentences(transcripts: dict[str, tuple[str, str]], limit: int = 0) -> list[SentencePair]:
    """Pairs of utterances of different speakers with the same transcript (case and spaces folded).
    `transcripts`: name -> (speaker, text). In order of text, then names; `limit` > 0 keeps that many."""
    by_text: dict[str, list[tuple[str, str]]] = {}
    for name, (spk, text) in sorted(transcripts.items()):
        by_text.setdefault(fold(text), []).append((name, spk))
    pairs = []
    for text in sorted(by_text):
        items = by_text[text]
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                if items[i][1] != items[j][1]:
                    pairs.append(SentencePair(text, items[i][0], items[j][0], items[i][1], items[j][1]))
    return pairs[:limit] if limit > 0 else pairs


def round_robin(pairs: Sequence[SentencePair], per_speaker_pair: int) -> list[SentencePair]:
    """At most `per_speaker_pair` pairs for each pair of voices (the first ones in text order)."""
    seen: Counter = Counter()
    out = []
    for p in pairs:
        key = (p.speaker_a, p.speaker_b)
        if seen[key] < per_speaker_pair:
            seen[key] += 1
            out.append(p)
    return out


def speaker_independence(
    pairs: Sequence[SentencePair],
    get_codes: Callable[[str], np.ndarray],
    transcripts: dict[str, tuple[str, str]],
    lengths: dict[str, int],
) -> dict:
    """Mean normalised edit distance of same-sentence pairs, and of a reference pair for each: utterance
    `a` against the utterance of speaker_b with another text whose length (`lengths`, frames) is closest
    to `b`'s. `get_codes(name)` gives an utterance's codes."""
    by_speaker: dict[str, list[str]] = {}
    for name, (spk, _) in sorted(transcripts.items()):
        if name in lengths:
            by_speaker.setdefault(spk, []).append(name)
    rows: dict[str, list[float]] = {"same_raw": [], "diff_raw": [], "same_merged": [], "diff_merged": []}
    ratios = []
    for p in pairs:
        others = [n for n in by_speaker.get(p.speaker_b, []) if fold(transcripts[n][1]) != p.text]
        if not others or p.b not in lengths:
            continue
        ref = min(others, key=lambda n: (abs(lengths[n] - lengths[p.b]), n))
        a, b, c = get_codes(p.a), get_codes(p.b), get_codes(ref)
        rows["same_raw"].append(normalized_distance(a, b))
        rows["diff_raw"].append(normalized_distance(a, c))
        ma, mb, mc = collapse_runs(a), collapse_runs(b), collapse_runs(c)
        rows["same_merged"].append(normalized_distance(ma, mb))
        rows["diff_merged"].append(normalized_distance(ma, mc))
        ratios.append(len(ma) / max(len(a), 1))
    out: dict = {"pairs": len(rows["same_raw"]), "speaker_pairs": len({(p.speaker_a, p.speaker_b) for p in pairs})}
    for k, v in rows.items():
        out[k] = float(np.mean(v)) if v else None
    out["merged_length_ratio"] = float(np.mean(ratios)) if ratios else None
    if rows["same_raw"]:
        out["same_closer_than_different"] = float(np.mean(np.array(rows["same_raw"]) < np.array(rows["diff_raw"])))
    return out
