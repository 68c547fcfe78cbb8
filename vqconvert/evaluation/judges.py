"""The external judges `vqconvert evaluate` uses, each behind a small wrapper, each optional.

| judge   | package(s)             | what it measures                                                      |
| ------- | ---------------------- | --------------------------------------------------------------------- |
| speaker | resemblyzer            | GE2E speaker embeddings (256-d, unit norm): identity, similarity      |
| asr     | pocketsphinx, jiwer    | transcripts (CMU Sphinx en-us model shipped in the wheel) and WER     |
| stoi    | pystoi                 | short-time objective intelligibility of the reconstruction            |
| pesq    | pesq                   | PESQ wide-band (ITU-T P.862.2) of the reconstruction                  |

Everything runs offline: resemblyzer's weights (`pretrained.pt`) and pocketsphinx's acoustic model,
dictionary and language model ship inside their wheels. All functions take float32 mono 16 kHz audio.

`import_judge(name)` raises `MissingJudge` naming the package to install; resemblyzer needs
`setuptools<81` because its dependency webrtcvad imports `pkg_resources`.
"""

from __future__ import annotations

import importlib
import re
import time
import warnings
from collections.abc import Sequence

import numpy as np

from vqconvert.errors import VQConvertError
from vqconvert.evaluation.dsp import mel_spectrogram

INSTALL_HINT = "pip install 'vqconvert[eval]' (or make eval-deps)"

# judge -> the modules it imports (and the pip name of each)
JUDGES: dict[str, tuple[tuple[str, str], ...]] = {
    "speaker": (("resemblyzer", "resemblyzer"),),
    "asr": (("pocketsphinx", "pocketsphinx"), ("jiwer", "jiwer")),
    "stoi": (("pystoi", "pystoi"),),
    "pesq": (("pesq", "pesq"),),
}
_PIP_NAMES = {"pkg_resources": "setuptools<81", "webrtcvad": "webrtcvad", "sklearn": "scikit-learn"}


class MissingJudge(VQConvertError):
    """A judge's package is not installed (or does not import)."""

    def __init__(self, judge: str, package: str, detail: str = "") -> None:
        self.judge, self.package, self.detail = judge, package, detail
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{judge} judge needs the package {package}{extra}: {INSTALL_HINT}")


def import_judge(name: str) -> list:
    """Import the modules of judge `name`; MissingJudge names the first package that is missing."""
    mods = []
    for module, pip_name in JUDGES[name]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # webrtcvad's pkg_resources deprecation warning
                mods.append(importlib.import_module(module))
        except ImportError as err:
            missing = getattr(err, "name", None) or module
            if missing.split(".")[0] == module:
                raise MissingJudge(name, pip_name) from None
            root = missing.split(".")[0]
            pkg = _PIP_NAMES.get(root, root)
            raise MissingJudge(name, pkg, f"needed by {pip_name}") from None
        except Exception as err:  # noqa: BLE001 - a package that is installed but broken
            raise MissingJudge(name, pip_name, f"import failed: {type(err).__name__}: {err}") from None
    return mods


def judge_versions(name: str) -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for _, pip_name in JUDGES[name]:
        try:
            out[pip_name] = version(pip_name)
        except PackageNotFoundError:
            out[pip_name] = None
    return out


# -- speaker identity ---------------------------------------------------------------------------------


class SpeakerJudge:
    """resemblyzer's voice encoder + nearest-centroid identification among reference speakers.

    Audio is volume-normalised to -30 dBFS (increase only, as resemblyzer's `preprocess_wav` does) but
    not VAD-trimmed: callers pass audio already trimmed with `vqconvert.audio.trim_silence`, and
    generated audio must be judged exactly as it is.
    """

    def __init__(self, device: str = "cpu") -> None:
        (resemblyzer,) = import_judge("speaker")
        self._rz = resemblyzer
        self.sample_rate = int(resemblyzer.sampling_rate)
        self._encoder = resemblyzer.VoiceEncoder(device=device, verbose=False)
        self.names: list[str] = []
        self.centroids = np.zeros((0, 256), np.float32)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """(T,) audio at 16 kHz -> unit (256,) embedding."""
        wav = np.asarray(audio, dtype=np.float32).reshape(-1)
        if wav.size == 0:
            wav = np.zeros(self.sample_rate // 10, np.float32)
        if float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) > 1e-7:
            wav = self._rz.normalize_volume(wav, -30, increase_only=True).astype(np.float32)
        emb = self._embed_utterance(wav)
        norm = float(np.linalg.norm(emb))
        return emb / norm if norm > 0 else emb

    def _embed_utterance(self, wav: np.ndarray) -> np.ndarray:
        """`VoiceEncoder.embed_utterance` (rate 1.3, min_coverage 0.75) with the mel spectrogram computed
        by `vqconvert.evaluation.dsp.mel_spectrogram`: the same numbers without librosa's first-call cost
        (seconds)."""
        import torch

        enc = self._encoder
        wav_slices, mel_slices = enc.compute_partial_slices(len(wav), rate=1.3, min_coverage=0.75)
        longest = wav_slices[-1].stop
        if longest >= len(wav):
            wav = np.pad(wav, (0, longest - len(wav)))
        mel = mel_spectrogram(wav, self.sample_rate)
        mels = np.array([mel[s] for s in mel_slices])
        with torch.no_grad():
            partial = enc(torch.from_numpy(mels).to(enc.device)).cpu().numpy()
        raw = partial.mean(axis=0)
        return (raw / max(float(np.linalg.norm(raw)), 1e-12)).astype(np.float32)

    def set_references(self, embeddings: dict[str, Sequence[np.ndarray]]) -> None:
        """Speaker -> embeddings of real utterances; each centroid is their normalised mean."""
        names, cents = [], []
        for name, embs in embeddings.items():
            if len(embs):
                c = np.mean(np.stack(embs), axis=0)
                cents.append(c / max(float(np.linalg.norm(c)), 1e-12))
                names.append(name)
        self.names = names
        self.centroids = np.stack(cents).astype(np.float32) if cents else np.zeros((0, 256), np.float32)

    @property
    def chance(self) -> float | None:
        return 1.0 / len(self.names) if self.names else None

    def similarities(self, emb: np.ndarray) -> np.ndarray:
        return self.centroids @ emb

    def identify(self, emb: np.ndarray) -> tuple[str, float]:
        """The reference speaker with the most similar centroid (cosine) and that similarity."""
        if not self.names:
            raise ValueError("no reference speakers set")
        sims = self.similarities(emb)
        i = int(np.argmax(sims))
        return self.names[i], float(sims[i])

    def similarity(self, emb: np.ndarray, name: str) -> float | None:
        if name not in self.names:
            return None
        return float(self.centroids[self.names.index(name)] @ emb)


# -- speech recognition -------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Lowercase words: hyphens and punctuation become spaces, inner apostrophes stay ("don't")."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words = [w.strip("'") for w in text.split()]
    return " ".join(w for w in words if w)


class Transcriber:
    """pocketsphinx 5 with its bundled en-us model; one decoder reused for every utterance.

    Its front end adapts as it listens (cepstral mean, noise estimate), so it is reset before each
    clip: a transcript depends on that clip alone, not on what was decoded before it.

    Babble can make the search crawl, so the audio goes in half-second pieces and decoding stops after
    `max_realtime` x its duration (+2 s): the transcript is then of the part heard so far (missing words
    count as deletions) and `timeouts` counts such clips. `maxhmmpf` 10,000 (default 30,000) bounds the
    search per frame: measured here, clean flite speech keeps its WER and babble decodes 40% faster.
    """

    def __init__(self, sample_rate: int = 16000, max_realtime: float = 4.0) -> None:
        pocketsphinx, jiwer = import_judge("asr")
        self._jiwer = jiwer
        self.sample_rate = sample_rate
        self.max_realtime = max_realtime
        self.timeouts = 0
        self._decoder = pocketsphinx.Decoder(samprate=sample_rate, loglevel="FATAL", maxhmmpf=10000)
        self._initial_cmn = self._decoder.get_cmn()

    def transcribe(self, audio: np.ndarray) -> str:
        pcm = np.round(np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0) * 32767.0).astype("<i2")
        d, piece = self._decoder, self.sample_rate // 2
        limit = 2.0 + self.max_realtime * len(pcm) / self.sample_rate
        start = time.monotonic()
        d.reinit_feat()
        d.set_cmn(self._initial_cmn)
        d.start_utt()
        for i in range(0, len(pcm), piece):
            d.process_raw(pcm[i : i + piece].tobytes(), full_utt=False)
            if time.monotonic() - start > limit and i + piece < len(pcm):
                self.timeouts += 1
                break
        d.end_utt()
        hyp = d.hyp()
        return normalize_text(hyp.hypstr) if hyp is not None and hyp.hypstr else ""

    def wer(self, refs: Sequence[str], hyps: Sequence[str]) -> dict:
        """Corpus WER (total edits / total reference words) over pairs with a non-empty normalised
        reference: {"wer", "errors", "words", "n"}; wer None when no pair counts."""
        return word_error_rate(refs, hyps, self._jiwer)


def word_error_rate(refs: Sequence[str], hyps: Sequence[str], jiwer=None) -> dict:
    if jiwer is None:
        (_, jiwer) = import_judge("asr")
    pairs = [(normalize_text(r), normalize_text(h)) for r, h in zip(refs, hyps, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return {"wer": None, "errors": 0, "words": 0, "n": 0}
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    errors = int(out.substitutions + out.deletions + out.insertions)
    words = int(out.substitutions + out.deletions + out.hits)
    return {"wer": errors / words if words else None, "errors": errors, "words": words, "n": len(pairs)}


# -- objective quality --------------------------------------------------------------------------------

STOI_MIN_SECONDS = 0.4  # pystoi needs 30 frames of 128 samples at 10 kHz after dropping silent frames


def stoi(ref: np.ndarray, deg: np.ndarray, sample_rate: int = 16000) -> float | None:
    """pystoi STOI of `deg` against `ref` (same length); None when too short to measure."""
    (pystoi,) = import_judge("stoi")
    n = min(len(ref), len(deg))
    if n < STOI_MIN_SECONDS * sample_rate:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(
            pystoi.stoi(np.asarray(ref[:n], np.float64), np.asarray(deg[:n], np.float64), sample_rate, extended=False)
        )
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return None
    return value


def pesq_wb(ref: np.ndarray, deg: np.ndarray, sample_rate: int = 16000) -> float | None:
    """PESQ wide-band MOS-LQO (about 1.0-4.6); None when PESQ cannot measure (too short, no speech)."""
    (pesq,) = import_judge("pesq")
    n = min(len(ref), len(deg))
    if sample_rate != 16000 or n < sample_rate // 4:
        return None
    try:
        return float(pesq.pesq(sample_rate, np.asarray(ref[:n], np.float32), np.asarray(deg[:n], np.float32), "wb"))
    except Exception:  # noqa: BLE001 - pesq raises its own error types for silence and short input
        return None
