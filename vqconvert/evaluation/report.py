"""The evaluation's summaries of the measured rows (reconstruction, transfer, judges) and the JSON-safe
conversion of the result."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from vqconvert.evaluation.metrics import MCD_HOP, MCD_MELS, MCD_ORDER, MCD_WIN
from vqconvert.evaluation.state import EvalItem, RunState


def json_safe(obj: Any) -> Any:
    """A copy fit for json.dumps: numpy scalars -> Python numbers, NaN/inf -> None, paths -> str."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def mean_or_none(values) -> float | None:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


def accuracy(correct: int, n: int, speaker: dict | None) -> dict | None:
    """An accuracy with the judge's chance level and its answers for noise (None without a judge)."""
    if speaker is None:
        return None
    judge = speaker["judge"]
    return {
        "accuracy": correct / n if n else None,
        "correct": correct,
        "n": n,
        "chance": judge.chance,
        "noise_answer": {k: v["speaker"] for k, v in speaker["noise"].items()},
    }


# -- summaries ------------------------------------------------------------------------------------


def reconstruction_summary(run: RunState, items: list[EvalItem], known: list[EvalItem], speaker: dict | None) -> dict:
    """NLL, speaker gain, STOI, MCD, PESQ and speaker ID of the reconstructions, overall and per voice."""
    rows = [i.row for i in items]
    nll = [(i.row["nll_bits_per_sample"], len(i.audio)) for i in known if i.row["nll_bits_per_sample"] is not None]
    nll_mean = sum(v * n for v, n in nll) / sum(n for _, n in nll) if nll else None
    gain = [(i.speaker_gain_bits, len(i.audio)) for i in known if i.speaker_gain_bits is not None]
    by_voice: dict[str, dict] = {}
    for spk in sorted({r["speaker"] for r in rows}):
        rs = [r for r in rows if r["speaker"] == spk]
        by_voice[spk] = {
            "n": len(rs),
            "nll_bits_per_sample": mean_or_none(r["nll_bits_per_sample"] for r in rs),
            "stoi": mean_or_none(r["stoi"] for r in rs),
            "mcd_db": mean_or_none(r["mcd_db"] for r in rs),
            "pesq_wb": mean_or_none(r["pesq_wb"] for r in rs),
        }
    acc = None
    if speaker is not None:
        ok = [i.row["reconstruction_identified_as"] == i.utt.speaker for i in known]
        acc = accuracy(sum(ok), len(ok), speaker)
    if not known:
        run.note("no source speaker is known to the model: no NLL, and reconstructions use the first target voice")
    return {
        "n": len(items),
        "nll_bits_per_sample": nll_mean,
        "nll_n": len(nll),
        "speaker_gain_bits": sum(v * n for v, n in gain) / sum(n for _, n in gain) if gain else None,
        "stoi": mean_or_none(r["stoi"] for r in rows),
        "stoi_n": sum(r["stoi"] is not None for r in rows),
        "mcd_db": mean_or_none(r["mcd_db"] for r in rows),
        "mcd_n": sum(r["mcd_db"] is not None for r in rows),
        "pesq_wb": mean_or_none(r["pesq_wb"] for r in rows),
        "pesq_n": sum(r["pesq_wb"] is not None for r in rows),
        "speaker_id": acc,
        "similarity_to_source": mean_or_none(r.get("reconstruction_similarity") for r in rows),
        "by_voice": by_voice,
    }


def transfer_summary(items: list[EvalItem], targets: list[str], speaker: dict | None) -> dict:
    """Speaker ID and similarities of the conversions, overall and per target."""
    pairs = sum(len(i.conversions) for i in items)
    same = sum(t == i.utt.speaker for i in items for t in targets)
    out: dict[str, Any] = {
        "targets": targets,
        "pairs": pairs,
        "skipped_same_speaker": same,
        "speaker_id": None,
        "identified_as_source": None,
        "similarity_to_target": None,
        "similarity_to_source": None,
        "by_target": {},
    }
    convs = [(i, c) for i in items for c in i.row["conversions"]]
    for t in targets:
        out["by_target"][t] = {
            "n": sum(t in i.conversions for i in items),
            "speaker_id": None,
            "identified_as_source": None,
            "similarity_to_target": None,
            "similarity_to_source": None,
        }
    if speaker is None or not convs:
        return out

    def summarise(sel) -> dict:
        return {
            "speaker_id": accuracy(sum(c["identified_as"] == c["target"] for _, c in sel), len(sel), speaker),
            "identified_as_source": (
                sum(c["identified_as"] == i.utt.speaker for i, c in sel) / len(sel) if sel else None
            ),
            "similarity_to_target": mean_or_none(c["similarity_to_target"] for _, c in sel),
            "similarity_to_source": mean_or_none(c["similarity_to_source"] for _, c in sel),
        }

    out.update(summarise(convs))
    for t in targets:
        sel = [(i, c) for i, c in convs if c["target"] == t]
        out["by_target"][t].update(summarise(sel))
    return out


def judges_summary(run: RunState, speaker: dict | None, known: list[EvalItem], asr_noise: dict | None) -> dict:
    """Each judge: available, packages, method, and the speaker judge's chance, noise answers, ceiling."""
    sp = dict(run.judges["speaker"])
    sp.update(
        {
            "method": "resemblyzer GE2E embeddings, nearest centroid by cosine among the model's "
            "speakers with real audio in the data",
            "n_speakers": None,
            "chance": None,
            "reference_utterances": None,
            "noise_answer": None,
            "real_accuracy": None,
        }
    )
    if speaker is not None:
        judge = speaker["judge"]
        sp.update(
            {
                "n_speakers": len(judge.names),
                "chance": judge.chance,
                "reference_utterances": speaker["n_references"],
                "noise_answer": speaker["noise"],
                "real_accuracy": accuracy(
                    sum(i.row["input_identified_as"] == i.utt.speaker for i in known), len(known), speaker
                ),
            }
        )
    asr = dict(run.judges["asr"])
    asr["noise_answer"] = asr_noise  # what it hears in silence and noise
    asr["method"] = (
        "pocketsphinx (bundled en-us model) transcripts, corpus WER with jiwer after "
        "lowercasing and stripping punctuation; only utterances that fit whole in --max-seconds"
    )
    return {
        "speaker": sp,
        "asr": asr,
        "stoi": {**run.judges["stoi"], "method": "pystoi STOI of the reconstruction against the input"},
        "pesq": {**run.judges["pesq"], "method": "PESQ wide-band (pesq) of the reconstruction"},
        "mcd": {
            "available": True,
            "skipped": "mcd" in run.opts.skip,
            "packages": None,
            "note": None,
            "method": f"own: c1..c{MCD_ORDER} of ln-amplitude librosa mel spectra ({MCD_MELS} bands, "
            f"{MCD_WIN}-sample window, hop {MCD_HOP}) by DCT, DTW-aligned, "
            "10/ln10*sqrt(2*sum d^2) averaged over the path",
        },
    }
