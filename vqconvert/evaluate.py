"""Evaluation of a trained model on held-out utterances: what `vqconvert evaluate` measures.

What is measured, and how (all audio at the model's rate, 16 kHz):

* **Sources.** The validation split the model was trained with (recomputed with `split_utterances` and
  the checkpoint's `train_config` val_fraction / holdout; `split="all"` takes every utterance), `limit`
  of them picked deterministically round-robin over speakers (speakers ordered by a hash of their
  name, each speaker's utterances preferring ones with a transcript that fit whole in `max_seconds`).
  Each is loaded, trimmed like the trainer does (`trim_silence`, 40 dB) and cropped to `max_seconds`
  (and to a whole number of 64-sample frames). Speakers the model does not know are allowed.
* **Reconstruction.** Teacher-forced NLL in bits/sample (`decode_logits` against the mu-law targets;
  only for speakers the model knows). The codes are decoded with `vqconvert.generate` in the source
  speaker's voice (for an unknown speaker: the first target voice), and the output is compared with
  the input: STOI (pystoi), PESQ-WB (pesq) and mel-cepstral distortion with DTW (`mcd`, our own:
  see its docstring).
* **Codebook.** Over the codes of all evaluated utterances: codes used out of K, perplexity
  (2 ** entropy of the code frequencies), the nominal bitrate sample_rate / hop * log2 K and the
  entropy-coded rate sample_rate / hop * entropy (what an ideal unigram entropy coder would need).
* **Transfer.** Each utterance is converted into each target voice (pairs with target == source are
  left out: that is reconstruction). The speaker judge (resemblyzer embeddings) identifies the voice of
  the converted audio by the nearest centroid (cosine) among the model's speakers that have real
  audio in the data (centroids: up to `reference_utterances` real utterances per speaker, training
  split first, never an evaluated one). Reported: accuracy (identified == target), the share
  identified as the source speaker, and mean cosine similarity to the target's centroid vs to the
  source speaker's centroid (for a speaker without other utterances: its own input's embedding).
  Every accuracy carries the judge's chance level (1 / number of candidate speakers) and the
  speakers it picks for white and pink noise, and the judge's accuracy on the real inputs is reported
  as its ceiling.
* **Intelligibility.** pocketsphinx transcripts of the source, reconstructed and converted audio,
  WER (jiwer, corpus-level: edits / reference words) against `Utterance.text`, per source voice and
  per target voice. Only utterances that fit whole in `max_seconds` count (a cropped clip no longer
  matches its transcript). pocketsphinx hears flite/festival voices far better than espeak ones:
  compare converted WER with the source WER of the same voices.

Every judge is optional: a missing package skips that judge with a note (`require_all` makes it an
error). No CLI code here: `vqconvert.cli.eval_cmd` turns this into the `evaluate` command.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from vqconvert.audio import audio_info, load_audio, mu_law_encode, save_wav, trim_silence
from vqconvert.config import TrainConfig
from vqconvert.errors import AudioError, VQConvertError

if TYPE_CHECKING:
    from vqconvert.checkpoint import LoadedModel
    from vqconvert.data.corpus import Utterance

SPLITS = ("val", "all")
METRICS = ("nll", "mcd", "stoi", "pesq", "speaker", "asr")  # what `skip` may name
OPTIONAL_JUDGES = ("speaker", "asr", "stoi", "pesq")  # the ones that need the eval extra
RESULT_KEYS = (
    "model",
    "data",
    "settings",
    "judges",
    "reconstruction",
    "codebook",
    "transfer",
    "intelligibility",
    "utterances",
    "notes",
)
TRIM_DB = 40.0  # as the trainer's cache
NOISE_KINDS = ("white", "pink")


class EvalError(VQConvertError):
    """Evaluation cannot run (nothing to evaluate, a judge required but missing, ...)."""


@dataclass
class EvalOptions:
    split: str = "val"  # "val": the model's validation split; "all": every utterance
    limit: int = 8  # utterances to evaluate (0 = all of the split)
    max_seconds: float = 2.0  # crop each utterance to this
    targets: tuple[str, ...] = ()  # target voices (names or indices); () = `n_targets` picked
    n_targets: int = 3
    sources: tuple[str, ...] = ()  # only these source speakers (() = any)
    seed: int = 0
    temperature: float = 1.0
    greedy: bool = False
    batch_size: int = 16  # utterances generated together
    backend: str = "auto"
    reference_utterances: int = 5  # real utterances per speaker for its centroid
    reference_seconds: float = 4.0  # each cropped to this
    reference_roots: tuple[str, ...] | None = None  # None: DATA + the model's training corpora found
    skip: tuple[str, ...] = ()  # metrics / judges not to run (METRICS)
    require_all: bool = False  # a missing judge package is an error instead of a note
    out_dir: Path | None = None  # save input, reconstruction and conversions as WAV here
    mic: str = "mic1"
    judge_device: str = "cpu"


# -- metrics on signals and codes ---------------------------------------------------------------------


def nominal_bitrate(sample_rate: int, hop: int, codebook_size: int) -> float:
    """Bits per second of fixed-length codes: sample_rate / hop * log2 K."""
    return sample_rate / hop * math.log2(codebook_size)


def entropy_bits(counts: Sequence[int] | np.ndarray) -> float:
    """Shannon entropy (bits) of the distribution given by `counts` (zeros ignored)."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return float(max(0.0, -(p * np.log2(p)).sum()))


def perplexity(counts: Sequence[int] | np.ndarray) -> float:
    """2 ** entropy: the number of equally likely codes with the same entropy (1..K)."""
    return float(2.0 ** entropy_bits(counts))


def codebook_stats(
    codes: Sequence[torch.Tensor | np.ndarray], codebook_size: int, sample_rate: int, hop: int
) -> dict:
    """Usage of the codebook over code sequences: used / K, perplexity, nominal and entropy-coded rate."""
    counts = np.zeros(codebook_size, np.int64)
    for c in codes:
        idx = np.asarray(c.cpu().numpy() if isinstance(c, torch.Tensor) else c, dtype=np.int64).reshape(-1)
        counts += np.bincount(idx, minlength=codebook_size)[:codebook_size]
    frames = int(counts.sum())
    h = entropy_bits(counts)
    rate = sample_rate / hop
    used = int((counts > 0).sum())
    return {
        "K": int(codebook_size),
        "frames": frames,
        "used": used,
        "used_fraction": used / codebook_size,
        "perplexity": 2.0**h if frames else None,
        "entropy_bits": h if frames else None,
        "frame_rate_hz": rate,
        "bitrate_bps": nominal_bitrate(sample_rate, hop, codebook_size),
        "entropy_bitrate_bps": rate * h if frames else None,
    }


@torch.no_grad()
def bits_per_sample(model, codes: torch.Tensor, speaker: int, audio: np.ndarray | torch.Tensor) -> float:
    """Teacher-forced NLL (bits per sample) of `audio` (T = F * hop) given its codes and speaker."""
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(audio, np.float32)).reshape(1, -1).to(device)
    c = torch.as_tensor(codes).reshape(1, -1).long().to(device)
    logits = model.decode_logits(c, torch.tensor([int(speaker)], device=device), x)
    target = mu_law_encode(x, model.cfg.mu_classes)
    nll = F.cross_entropy(logits.float(), target)
    return float(nll) / math.log(2)


# Mel-cepstrum for MCD: 25 ms Hann windows every 5 ms (n_fft 512 at 16 kHz, centred, zero-padded ends),
# 80 Slaney mel bands 0-8 kHz (librosa's filter bank), natural-log amplitude floored at 1e-5 (power 1e-10)
# per band, DCT-II scaled to cepstral units (an orthonormal DCT over N bands / sqrt(2 N): a log-spectrum
# ripple A cos(...) gives c = A / 2, as a true cepstrum does), coefficients c1..c24 (c0, the energy, is
# left out).
MCD_N_FFT, MCD_WIN, MCD_HOP, MCD_MELS, MCD_ORDER = 512, 400, 80, 80, 24
_MEL_FB: dict[tuple, np.ndarray] = {}


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    lin = f / (200.0 / 3)
    logstep = math.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / logstep, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    logstep = math.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * (200.0 / 3))


def mel_filterbank(sample_rate: int, n_fft: int = MCD_N_FFT, n_mels: int = MCD_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular Slaney-normalised filters from 0 Hz to Nyquist: the same matrix
    as `librosa.filters.mel(sr=..., n_fft=..., n_mels=...)`, without importing librosa (seconds here)."""
    key = (sample_rate, n_fft, n_mels)
    if key not in _MEL_FB:
        fft_f = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
        mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
        fdiff = np.diff(mel_f)
        ramps = mel_f[:, None] - fft_f[None, :]
        lower = -ramps[:-2] / fdiff[:-1, None]
        upper = ramps[2:] / fdiff[1:, None]
        weights = np.maximum(0.0, np.minimum(lower, upper))
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
        _MEL_FB[key] = weights
    return _MEL_FB[key]


def mel_cepstrum(audio: np.ndarray, sample_rate: int = 16000, order: int = MCD_ORDER) -> np.ndarray:
    """(T,) audio -> (frames, order) mel-cepstral coefficients c1..c_order (see the constants above)."""
    import scipy.fft

    x = np.asarray(audio, np.float64).reshape(-1)
    x = np.pad(x, (MCD_N_FFT // 2, MCD_N_FFT // 2))
    if x.size < MCD_N_FFT:
        x = np.pad(x, (0, MCD_N_FFT - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, MCD_N_FFT)[::MCD_HOP]
    win = np.zeros(MCD_N_FFT)
    off = (MCD_N_FFT - MCD_WIN) // 2
    win[off : off + MCD_WIN] = np.hanning(MCD_WIN + 1)[:-1]  # periodic Hann, centred in the FFT frame
    power = np.abs(np.fft.rfft(frames * win, axis=1)) ** 2  # (frames, bins)
    mel = power @ mel_filterbank(sample_rate).T  # (frames, mels)
    log_amp = 0.5 * np.log(np.maximum(mel, 1e-10))
    cep = scipy.fft.dct(log_amp, type=2, norm="ortho", axis=1) / math.sqrt(2 * MCD_MELS)
    return cep[:, 1 : order + 1]


def dtw_path(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost monotonic alignment through a (N, M) cost matrix with steps (1,0), (0,1), (1,1);
    returns the (L, 2) index pairs from (0, 0) to (N-1, M-1). Vectorised over anti-diagonals."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):  # i + j = k over the 1-based acc indices
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        best = np.minimum(np.minimum(acc[i - 1, j], acc[i, j - 1]), acc[i - 1, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    path = [(n - 1, m - 1)]
    i, j = n, m
    while (i, j) != (1, 1):
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))  # ties prefer the diagonal
        i, j = min(steps, key=lambda s: acc[s])
        path.append((i - 1, j - 1))
    return np.array(path[::-1], dtype=np.int64)


def mcd(ref: np.ndarray, deg: np.ndarray, sample_rate: int = 16000) -> float:
    """Mel-cepstral distortion (dB) of `deg` against `ref` after DTW alignment.

    MCD = 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2) per aligned frame pair, averaged over the DTW path,
    with `mel_cepstrum` (c1..c24 of librosa mel spectra, not SPTK's all-pass mel-cepstrum: values are
    comparable between our runs, not with papers' numbers). 0 for identical signals.
    """
    a, b = mel_cepstrum(ref, sample_rate), mel_cepstrum(deg, sample_rate)
    diff = np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))
    path = dtw_path(diff)
    k = 10.0 / math.log(10.0) * math.sqrt(2.0)
    return float(k * diff[path[:, 0], path[:, 1]].mean())


# -- data ---------------------------------------------------------------------------------------------


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


def train_split_settings(loaded: LoadedModel) -> tuple[float, tuple[str, ...], bool]:
    """(val_fraction, holdout, known): from the checkpoint's train_config, else TrainConfig's defaults."""
    tc = (loaded.meta or {}).get("train_config")
    if not tc:
        d = TrainConfig()
        return d.val_fraction, tuple(d.holdout), False
    cfg = TrainConfig.from_dict(tc)
    return cfg.val_fraction, tuple(cfg.holdout), True


def training_roots(loaded: LoadedModel) -> list[str]:
    tc = (loaded.meta or {}).get("train_config") or {}
    return [str(r) for r in tc.get("data") or []]


def _duration(u: Utterance) -> float:
    try:
        return float(audio_info(u.path)["duration"])
    except (VQConvertError, OSError):
        return math.inf


def select_utterances(
    utts: Sequence[Utterance], limit: int, max_seconds: float, sources: Sequence[str] = ()
) -> list[Utterance]:
    """`limit` utterances (0 = all), round-robin over speakers ordered by a hash of their names; within a
    speaker, ones with a transcript that fit whole in `max_seconds` first (by file header), then by a hash
    of the key. Deterministic; reads headers only of the speakers it visits."""
    by_spk: dict[str, list] = defaultdict(list)
    for u in utts:
        if not sources or u.speaker in sources:
            by_spk[u.speaker].append(u)
    speakers = sorted(by_spk, key=lambda s: (_unit_hash(f"speaker/{s}"), s))
    if not limit or limit >= sum(len(v) for v in by_spk.values()):
        return sorted((u for s in speakers for u in by_spk[s]), key=lambda u: (u.speaker, u.utt_id))
    queues: dict[str, list] = {}
    chosen: list = []
    rnd = 0
    while len(chosen) < limit:
        took = False
        for s in speakers:
            if s not in queues:
                queues[s] = sorted(
                    by_spk[s],
                    key=lambda u: (not u.text, _duration(u) > max_seconds, _unit_hash(u.key), u.utt_id),
                )
            if rnd < len(queues[s]):
                chosen.append(queues[s][rnd])
                took = True
                if len(chosen) >= limit:
                    break
        if not took:
            break
        rnd += 1
    return chosen


def prepare_audio(
    path: str | Path, sample_rate: int, max_seconds: float | None, hop: int = 64
) -> tuple[np.ndarray, bool, float]:
    """Load, trim silence (as the trainer) and crop to `max_seconds` and whole frames.
    -> (audio, cropped, trimmed seconds). AudioError when less than one frame is left."""
    audio = trim_silence(load_audio(path, sample_rate), top_db=TRIM_DB, sample_rate=sample_rate)
    full = audio.shape[0]
    limit = full if max_seconds is None else min(full, int(max_seconds * sample_rate))
    n = (limit // hop) * hop
    if n == 0:
        raise AudioError(f"{path}: shorter than one {hop}-sample frame after trimming silence")
    cropped = limit < full  # dropping < hop trailing samples to whole frames does not count
    return np.ascontiguousarray(audio[:n]), cropped, full / sample_rate


def default_targets(speakers: Sequence[str], candidates: Sequence[str], k: int) -> list[str]:
    """k target voices spread evenly over `candidates` (the model's speakers with audio in the data, in
    the model's order), else over all of the model's speakers."""
    pool = [s for s in speakers if s in set(candidates)] or list(speakers)
    k = max(0, min(k, len(pool)))
    return [pool[int((i + 0.5) * len(pool) / k)] for i in range(k)]


def safe_name(name: str) -> str:
    """A speaker or utterance name made safe for a file name."""
    return re.sub(r"[^\w.+-]", "_", name).strip(".") or "x"


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


# -- results helpers ----------------------------------------------------------------------------------


def _mean(values) -> float | None:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


@dataclass
class _Utt:
    utt: Any
    audio: np.ndarray
    cropped: bool
    seconds_trimmed: float
    known: bool
    spk_index: int | None
    codes: torch.Tensor | None = None
    row: dict = field(default_factory=dict)
    recon: np.ndarray | None = None
    recon_voice: str | None = None
    conversions: dict[str, np.ndarray] = field(default_factory=dict)  # target -> audio


class Evaluator:
    """One evaluation run. `run()` returns the result dict (keys RESULT_KEYS)."""

    def __init__(
        self,
        loaded: LoadedModel,
        data: Sequence[str | Path],
        opts: EvalOptions | None = None,
        *,
        log: Callable[[str], None] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.loaded, self.opts = loaded, opts or EvalOptions()
        self.data = [str(d) for d in data] if data else training_roots(loaded)
        self.log = log or (lambda _msg: None)
        self.progress = progress or (lambda _what, _done, _total: None)
        self.notes: list[str] = []
        self.cfg = loaded.config
        self.sr = self.cfg.sample_rate
        self.judges: dict[str, dict] = {}
        self._scans: dict[str, list] = {}

    # -- setup ----------------------------------------------------------------------------------------

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        self.log(f"note: {msg}")

    def _check_options(self) -> None:
        o = self.opts
        if o.split not in SPLITS:
            raise EvalError(f"unknown split {o.split!r}: use {' or '.join(SPLITS)}")
        bad = [s for s in o.skip if s not in METRICS]
        if bad:
            raise EvalError(f"cannot skip {', '.join(bad)}: choose from {', '.join(METRICS)}")
        if o.max_seconds <= 0:
            raise EvalError("--max-seconds must be positive")
        if not self.data:
            raise EvalError("no corpus given, and the checkpoint records no training corpus: pass DATA")

    def _check_judges(self) -> None:
        from vqconvert.judges import INSTALL_HINT, MissingJudge, import_judge, judge_versions

        missing: dict[str, str] = {}
        for name in OPTIONAL_JUDGES:
            state = {"available": False, "skipped": name in self.opts.skip, "packages": None, "note": None}
            self.judges[name] = state
            if state["skipped"]:
                state["note"] = "skipped (--skip)"
                continue
            try:
                import_judge(name)
            except MissingJudge as err:
                missing[name] = err.package + (f", {err.detail}" if err.detail else "")
                state["note"] = f"missing package {err.package}" + (f" ({err.detail})" if err.detail else "")
                continue
            state["available"] = True
            state["packages"] = judge_versions(name)
        if missing:
            what = ", ".join(f"{pkg} ({judge})" for judge, pkg in missing.items())
            if self.opts.require_all:
                raise EvalError(f"missing eval packages: {what}; install them with: {INSTALL_HINT}")
            self.notes.append(f"missing eval packages: {what}: those judges are skipped; {INSTALL_HINT}")
            self.log(
                f"warning: missing eval packages: {what}: those judges are skipped; install them "
                f"with: {INSTALL_HINT}"
            )

    def _use(self, name: str) -> bool:
        if name in OPTIONAL_JUDGES:
            return self.judges[name]["available"]
        return name not in self.opts.skip

    # -- the run --------------------------------------------------------------------------------------

    def run(self) -> dict:
        from vqconvert.data.corpus import scan_corpora, split_utterances

        t_start = time.perf_counter()
        self._check_options()
        self._check_judges()
        o, loaded = self.opts, self.loaded
        utts = scan_corpora(self.data, mic=o.mic)
        val_fraction, holdout, recorded = train_split_settings(loaded)
        if o.split == "val":
            if not recorded:
                self.note(
                    f"the checkpoint records no training config: validation split recomputed with "
                    f"the defaults (val_fraction {val_fraction})"
                )
            train_part, pool = split_utterances(utts, val_fraction, holdout)
            if not pool:
                raise EvalError(
                    f"the validation split of {', '.join(self.data)} is empty (the model was "
                    f"trained with val_fraction {val_fraction}): use --split all"
                )
        else:
            train_part, pool = [], list(utts)
        in_train = {u.key for u in train_part}
        unknown_sources = [s for s in o.sources if s not in {u.speaker for u in pool}]
        if unknown_sources:
            raise EvalError(f"no utterance of {', '.join(unknown_sources)} in the {o.split} split")
        chosen = select_utterances(pool, o.limit, o.max_seconds, o.sources)

        targets = self._targets(utts)
        items = self._load_sources(chosen)
        if not items:
            raise EvalError("none of the selected utterances could be read")
        self.log(
            f"evaluating {len(items)} utterances ({sum(len(i.audio) for i in items) / self.sr:.1f} s) "
            f"of {len({i.utt.speaker for i in items})} speakers from the {o.split} split "
            f"({len(pool)} utterances); targets: {', '.join(targets) or '-'}"
        )

        self._encode(items)
        self._generate(items, targets)
        if o.out_dir is not None:
            self._save(items)
        self._reconstruction_metrics(items)
        speaker = self._speaker_judge(items, targets, utts, in_train)
        intel = self._intelligibility(items, targets)

        known = [i for i in items if i.known]
        recon = self._reconstruction_summary(items, known, speaker)
        transfer = self._transfer_summary(items, targets, speaker)
        codebook = codebook_stats([i.codes for i in items], self.cfg.codebook_size, self.sr, self.cfg.hop)
        judges = self._judges_summary(speaker, known)
        result = {
            "model": {
                "path": str(loaded.path),
                "fingerprint": loaded.fingerprint,
                "step": loaded.step,
                "preset": self.cfg.preset,
                "codebook_size": self.cfg.codebook_size,
                "speakers": len(loaded.speakers),
            },
            "data": {
                "roots": self.data,
                "split": o.split,
                "val_fraction": val_fraction,
                "holdout": list(holdout),
                "split_utterances": len(pool),
                "evaluated": len(items),
                "speakers": sorted({i.utt.speaker for i in items}),
                "unknown_speakers": sorted({i.utt.speaker for i in items if not i.known}),
                "max_seconds": o.max_seconds,
                "seconds": sum(len(i.audio) for i in items) / self.sr,
                "cropped": sum(i.cropped for i in items),
            },
            "settings": {
                "targets": targets,
                "seed": o.seed,
                "temperature": o.temperature,
                "greedy": o.greedy,
                "backend": o.backend,
                "batch_size": o.batch_size,
                "limit": o.limit,
                "reference_utterances": o.reference_utterances,
                "skip": list(o.skip),
                "seconds": round(time.perf_counter() - t_start, 2),
            },
            "judges": judges,
            "reconstruction": recon,
            "codebook": codebook,
            "transfer": transfer,
            "intelligibility": intel,
            "utterances": [i.row for i in items],
            "notes": self.notes,
        }
        return json_safe(result)

    # -- steps ----------------------------------------------------------------------------------------

    def _targets(self, utts) -> list[str]:
        loaded = self.loaded
        if self.opts.targets:
            out = []
            for t in self.opts.targets:
                name = loaded.speakers[loaded.speaker_index(t)]
                if name not in out:
                    out.append(name)
            return out
        present = {u.speaker for u in utts}
        for root in self._reference_roots():
            if root not in self.data:
                present |= {u.speaker for u in self._scan_quiet(root)}
        return default_targets(
            loaded.speakers, [s for s in loaded.speakers if s in present], self.opts.n_targets
        )

    def _reference_roots(self) -> list[str]:
        if self.opts.reference_roots is not None:
            return list(self.opts.reference_roots)
        roots = list(self.data)
        for r in training_roots(self.loaded):
            if r not in roots and Path(r).is_dir():
                roots.append(r)
        return roots

    def _scan_quiet(self, root: str) -> list:
        from vqconvert.data.corpus import scan_corpus

        if root not in self._scans:
            try:
                self._scans[root] = scan_corpus(root, mic=self.opts.mic)
            except VQConvertError as err:
                self.note(f"reference corpus skipped: {err}")
                self._scans[root] = []
        return self._scans[root]

    def _load_sources(self, chosen) -> list[_Utt]:
        items = []
        for u in chosen:
            try:
                audio, cropped, secs = prepare_audio(u.path, self.sr, self.opts.max_seconds, self.cfg.hop)
            except AudioError as err:
                self.note(f"skipped {u.key}: {err}")
                continue
            known = u.speaker in self.loaded.speakers
            it = _Utt(
                u, audio, cropped, secs, known, self.loaded.speakers.index(u.speaker) if known else None
            )
            it.row = {
                "key": u.key,
                "speaker": u.speaker,
                "known_speaker": known,
                "path": str(u.path),
                "text": u.text,
                "seconds": len(audio) / self.sr,
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

    def _encode(self, items: list[_Utt]) -> None:
        from vqconvert.inference import encode_audio

        model = self.loaded.model
        for it in items:
            it.codes = encode_audio(model, it.audio)
            it.row["frames"] = int(it.codes.numel())
            it.row["codes_used"] = int(torch.unique(it.codes).numel())
            it.row["nll_bits_per_sample"] = None
            if it.known and self._use("nll"):
                it.row["nll_bits_per_sample"] = bits_per_sample(model, it.codes, it.spk_index, it.audio)

    def _generate(self, items: list[_Utt], targets: list[str]) -> None:
        from vqconvert.generate import generate

        o, spk = self.opts, self.loaded.speakers
        jobs: list[tuple[_Utt, str | None, str]] = []  # (item, target or None for recon, voice)
        for it in items:
            voice = it.utt.speaker if it.known else (targets[0] if targets else spk[0])
            it.recon_voice = voice
            jobs.append((it, None, voice))
            for t in targets:
                if t != it.utt.speaker:
                    jobs.append((it, t, t))
        total = sum(int(it.codes.numel()) * self.cfg.hop for it, _, _ in jobs)
        self.log(
            f"generating {len(jobs)} clips ({total / self.sr:.1f} s of audio) in batches of {o.batch_size}"
        )
        done = 0
        bs = max(1, o.batch_size)
        for b, start in enumerate(range(0, len(jobs), bs)):
            batch = jobs[start : start + bs]
            offset = done

            def report(d: int, _t: int, offset: int = offset) -> None:
                self.progress("generate", offset + d, total)

            outs = generate(
                self.loaded.model,
                [it.codes for it, _, _ in batch],
                [spk.index(v) for _, _, v in batch],
                temperature=o.temperature,
                greedy=o.greedy,
                seed=o.seed * 100_003 + b,
                backend=o.backend,
                progress=report,
            )
            for (it, target, _), wav in zip(batch, outs, strict=True):
                wav = wav.detach().float().cpu().numpy()
                if target is None:
                    it.recon = wav
                else:
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
            done += sum(int(it.codes.numel()) * self.cfg.hop for it, _, _ in batch)
            self.progress("generate", done, total)

    def _save(self, items: list[_Utt]) -> None:
        out = Path(self.opts.out_dir)
        for it in items:
            d = out / safe_name(it.utt.speaker)
            d.mkdir(parents=True, exist_ok=True)
            stem = safe_name(it.utt.utt_id)
            files = {"source": d / f"{stem}.source.wav"}
            recon_name = "recon" if it.known else f"recon-{safe_name(it.recon_voice)}"
            files["reconstruction"] = d / f"{stem}.{recon_name}.wav"
            save_wav(files["source"], it.audio, self.sr, overwrite=True)
            save_wav(files["reconstruction"], it.recon, self.sr, overwrite=True)
            for t, wav in it.conversions.items():
                files[t] = d / f"{stem}.to-{safe_name(t)}.wav"
                save_wav(files[t], wav, self.sr, overwrite=True)
            it.row["files"] = {k: str(v) for k, v in files.items()}

    def _reconstruction_metrics(self, items: list[_Utt]) -> None:
        from vqconvert import judges

        for it in items:
            r = it.row
            r["reconstruction_voice"] = it.recon_voice
            r["mcd_db"] = mcd(it.audio, it.recon, self.sr) if self._use("mcd") else None
            r["stoi"] = judges.stoi(it.audio, it.recon, self.sr) if self._use("stoi") else None
            r["pesq_wb"] = judges.pesq_wb(it.audio, it.recon, self.sr) if self._use("pesq") else None
        if self._use("stoi") and all(i.row["stoi"] is None for i in items):
            self.note(f"STOI not measured: clips shorter than {judges.STOI_MIN_SECONDS} s of speech")

    # -- speaker judge --------------------------------------------------------------------------------

    def _speaker_judge(self, items: list[_Utt], targets: list[str], utts, in_train: set[str]) -> dict | None:
        if not self._use("speaker"):
            return None
        from vqconvert.judges import SpeakerJudge

        judge = SpeakerJudge(device=self.opts.judge_device)
        evaluated = {i.utt.key for i in items}
        pool: dict[str, list] = defaultdict(list)
        seen: set[str] = set()
        for root in self._reference_roots():
            found = utts if root in self.data else self._scan_quiet(root)
            for u in found:
                if u.key not in evaluated and u.key not in seen:
                    seen.add(u.key)
                    pool[u.speaker].append(u)
        model_spk = [s for s in self.loaded.speakers if s in pool]
        unknown_src = sorted({i.utt.speaker for i in items if not i.known})
        wanted = model_spk + [s for s in unknown_src if s in pool]
        n_refs = sum(min(len(pool[s]), self.opts.reference_utterances) for s in wanted)
        self.log(f"speaker judge: embedding {n_refs} reference utterances of {len(wanted)} speakers")
        embs: dict[str, list[np.ndarray]] = {}
        done = 0
        for s in wanted:
            ranked = sorted(pool[s], key=lambda u: (u.key not in in_train, _unit_hash(u.key), u.utt_id))
            embs[s] = []
            for u in ranked[: self.opts.reference_utterances]:
                try:
                    audio, _, _ = prepare_audio(u.path, self.sr, self.opts.reference_seconds, 1)
                except AudioError as err:
                    self.note(f"reference skipped: {err}")
                    continue
                embs[s].append(judge.embed(audio))
                done += 1
                self.progress("references", done, n_refs)
        judge.set_references({s: embs[s] for s in model_spk if embs.get(s)})
        extra_centroids = {}
        for s in unknown_src:
            if embs.get(s):
                c = np.mean(np.stack(embs[s]), axis=0)
                extra_centroids[s] = c / max(float(np.linalg.norm(c)), 1e-12)
        missing_targets = [t for t in targets if t not in judge.names]
        if missing_targets:
            self.note(
                f"no real audio of target(s) {', '.join(missing_targets)} in the data: they can never be "
                f"identified (pass their corpus as DATA)"
            )
        if not judge.names:
            self.note("speaker judge skipped: none of the model's speakers has real audio in the data")
            return None

        noise = noise_answers(judge, max(self.opts.max_seconds, 0.5), self.sr, seed=self.opts.seed)

        def src_sim(it: _Utt, emb: np.ndarray, own: np.ndarray) -> float:
            s = judge.similarity(emb, it.utt.speaker)
            if s is not None:
                return s
            if it.utt.speaker in extra_centroids:
                return float(extra_centroids[it.utt.speaker] @ emb)
            return float(own @ emb)

        for it in items:
            own = judge.embed(it.audio)
            r = it.row
            r["input_identified_as"] = judge.identify(own)[0]
            rec = judge.embed(it.recon)
            r["reconstruction_identified_as"] = judge.identify(rec)[0]
            r["reconstruction_similarity"] = round(src_sim(it, rec, own), 4)
            for c in r["conversions"]:
                e = judge.embed(it.conversions[c["target"]])
                st = judge.similarity(e, c["target"])
                c.update(
                    {
                        "identified_as": judge.identify(e)[0],
                        "similarity_to_target": None if st is None else round(st, 4),
                        "similarity_to_source": round(src_sim(it, e, own), 4),
                    }
                )
        return {"judge": judge, "noise": noise, "n_references": done}

    def _accuracy(self, correct: int, n: int, speaker: dict | None) -> dict | None:
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

    def _reconstruction_summary(self, items: list[_Utt], known: list[_Utt], speaker: dict | None) -> dict:
        rows = [i.row for i in items]
        nll = [
            (i.row["nll_bits_per_sample"], len(i.audio))
            for i in known
            if i.row["nll_bits_per_sample"] is not None
        ]
        nll_mean = sum(v * n for v, n in nll) / sum(n for _, n in nll) if nll else None
        by_voice: dict[str, dict] = {}
        for spk in sorted({r["speaker"] for r in rows}):
            rs = [r for r in rows if r["speaker"] == spk]
            by_voice[spk] = {
                "n": len(rs),
                "nll_bits_per_sample": _mean(r["nll_bits_per_sample"] for r in rs),
                "stoi": _mean(r["stoi"] for r in rs),
                "mcd_db": _mean(r["mcd_db"] for r in rs),
                "pesq_wb": _mean(r["pesq_wb"] for r in rs),
            }
        acc = None
        if speaker is not None:
            ok = [i.row["reconstruction_identified_as"] == i.utt.speaker for i in known]
            acc = self._accuracy(sum(ok), len(ok), speaker)
        if not known:
            self.note(
                "no source speaker is known to the model: no NLL, and reconstructions use the first "
                "target voice"
            )
        return {
            "n": len(items),
            "nll_bits_per_sample": nll_mean,
            "nll_n": len(nll),
            "stoi": _mean(r["stoi"] for r in rows),
            "stoi_n": sum(r["stoi"] is not None for r in rows),
            "mcd_db": _mean(r["mcd_db"] for r in rows),
            "mcd_n": sum(r["mcd_db"] is not None for r in rows),
            "pesq_wb": _mean(r["pesq_wb"] for r in rows),
            "pesq_n": sum(r["pesq_wb"] is not None for r in rows),
            "speaker_id": acc,
            "similarity_to_source": _mean(r.get("reconstruction_similarity") for r in rows),
            "by_voice": by_voice,
        }

    def _transfer_summary(self, items: list[_Utt], targets: list[str], speaker: dict | None) -> dict:
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
                "speaker_id": self._accuracy(
                    sum(c["identified_as"] == c["target"] for _, c in sel), len(sel), speaker
                ),
                "identified_as_source": (
                    sum(c["identified_as"] == i.utt.speaker for i, c in sel) / len(sel) if sel else None
                ),
                "similarity_to_target": _mean(c["similarity_to_target"] for _, c in sel),
                "similarity_to_source": _mean(c["similarity_to_source"] for _, c in sel),
            }

        out.update(summarise(convs))
        for t in targets:
            sel = [(i, c) for i, c in convs if c["target"] == t]
            out["by_target"][t].update(summarise(sel))
        return out

    def _judges_summary(self, speaker: dict | None, known: list[_Utt]) -> dict:
        sp = dict(self.judges["speaker"])
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
                    "real_accuracy": self._accuracy(
                        sum(i.row["input_identified_as"] == i.utt.speaker for i in known), len(known), speaker
                    ),
                }
            )
        asr = dict(self.judges["asr"])
        asr["noise_answer"] = getattr(self, "_asr_noise", None)  # what it hears in silence and noise
        asr["method"] = (
            "pocketsphinx (bundled en-us model) transcripts, corpus WER with jiwer after "
            "lowercasing and stripping punctuation; only utterances that fit whole in --max-seconds"
        )
        return {
            "speaker": sp,
            "asr": asr,
            "stoi": {**self.judges["stoi"], "method": "pystoi STOI of the reconstruction against the input"},
            "pesq": {**self.judges["pesq"], "method": "PESQ wide-band (pesq) of the reconstruction"},
            "mcd": {
                "available": True,
                "skipped": "mcd" in self.opts.skip,
                "packages": None,
                "note": None,
                "method": f"own: c1..c{MCD_ORDER} of ln-amplitude librosa mel spectra ({MCD_MELS} bands, "
                f"{MCD_WIN}-sample window, hop {MCD_HOP}) by DCT, DTW-aligned, "
                "10/ln10*sqrt(2*sum d^2) averaged over the path",
            },
        }

    # -- intelligibility ------------------------------------------------------------------------------

    def _intelligibility(self, items: list[_Utt], targets: list[str]) -> dict:
        out: dict[str, Any] = {
            "n_utterances": 0,
            "wer_source": None,
            "wer_reconstructed": None,
            "wer_converted": None,
            "by_source_voice": {},
            "by_target_voice": {},
        }
        whole = [i for i in items if i.utt.text and not i.cropped]
        if not self._use("asr"):
            return out
        if not whole:
            why = (
                "no transcripts"
                if not any(i.utt.text for i in items)
                else "every utterance with a transcript was cropped (raise --max-seconds)"
            )
            self.note(f"WER not measured: {why}")
            return out
        from vqconvert.judges import Transcriber

        asr = Transcriber(self.sr)
        secs = max(self.opts.max_seconds, 0.5)
        self._asr_noise = {
            "silence": asr.transcribe(np.zeros(int(secs * self.sr), np.float32)),
            **{k: asr.transcribe(v) for k, v in noise_clips(secs, self.sr, self.opts.seed).items()},
        }
        n_clips = sum(2 + len(i.conversions) for i in whole)
        self.log(f"speech recognition: {n_clips} clips")
        done = 0
        hyps: dict[tuple[str, str], str] = {}  # (key, "source" | "recon" | target) -> text
        for it in whole:
            clips = [("source", it.audio), ("recon", it.recon), *it.conversions.items()]
            for kind, wav in clips:
                hyps[(it.utt.key, kind)] = asr.transcribe(wav)
                done += 1
                self.progress("asr", done, n_clips)
            it.row["hyp_source"] = hyps[(it.utt.key, "source")]
            it.row["hyp_reconstruction"] = hyps[(it.utt.key, "recon")]
            for c in it.row["conversions"]:
                c["hyp"] = hyps[(it.utt.key, c["target"])]

        def wer(sel: list[_Utt], kind: str | None = None, target: str | None = None) -> float | None:
            refs, hs = [], []
            for it in sel:
                kinds = [kind] if kind else list(it.conversions)
                if target is not None:
                    kinds = [target] if target in it.conversions else []
                for k in kinds:
                    refs.append(it.utt.text)
                    hs.append(hyps[(it.utt.key, k)])
            return asr.wer(refs, hs)["wer"] if refs else None

        out.update(
            {
                "n_utterances": len(whole),
                "wer_source": wer(whole, "source"),
                "wer_reconstructed": wer(whole, "recon"),
                "wer_converted": wer(whole),
            }
        )
        for spk in sorted({i.utt.speaker for i in whole}):
            sel = [i for i in whole if i.utt.speaker == spk]
            out["by_source_voice"][spk] = {
                "n": len(sel),
                "wer_source": wer(sel, "source"),
                "wer_reconstructed": wer(sel, "recon"),
                "wer_converted": wer(sel),
            }
        for t in targets:
            sel = [i for i in whole if t in i.conversions]
            out["by_target_voice"][t] = {
                "n": len(sel),
                "wer_converted": wer(sel, target=t),
                "wer_source": wer(sel, "source"),
            }
        return out


def evaluate(loaded: LoadedModel, data: Sequence[str | Path], opts: EvalOptions | None = None, **kw) -> dict:
    """Run an evaluation (see the module docstring); returns a JSON-ready dict with keys RESULT_KEYS."""
    return Evaluator(loaded, data, opts, **kw).run()


def noise_clips(seconds: float, sample_rate: int = 16000, seed: int = 0) -> dict[str, np.ndarray]:
    """White and pink noise (rms 0.05) of `seconds`: what the judges are asked about as a control."""
    from vqconvert.judges import pink_noise, white_noise

    return {
        kind: make(seconds, sample_rate, seed=seed)
        for kind, make in zip(NOISE_KINDS, (white_noise, pink_noise), strict=True)
    }


def noise_answers(judge, seconds: float = 2.0, sample_rate: int = 16000, seed: int = 0) -> dict:
    """Which reference speaker a SpeakerJudge (with references set) picks for white and pink noise:
    {"white": {"speaker", "similarity"}, "pink": {...}}."""
    out = {}
    for kind, clip in noise_clips(seconds, sample_rate, seed).items():
        name, sim = judge.identify(judge.embed(clip))
        out[kind] = {"speaker": name, "similarity": round(sim, 4)}
    return out
