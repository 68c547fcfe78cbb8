"""Codes files (`.vqc`): the discrete VQ indices of one utterance, self-describing and versioned.

Layout (all integers little-endian)::

    offset  size  field
    0       8     magic b"VQCODES\\0"
    8       2     u16 format version (FORMAT_VERSION)
    10      4     u32 N: length of the JSON header in bytes
    14      N     JSON header, UTF-8 (an object, see below)
    14+N    2*F   the F code indices, u16 each

The header holds `sample_rate`, `hop`, `codebook_size` (K), `frames` (F), `samples` (length of the
audio before it was padded to a multiple of `hop`, or null), `fingerprint` (of the model whose encoder
and codebook made the codes: codes mean nothing to another model), `speaker` (the source speaker when
known, else null), `source` (the input file name, or null) and `created_by` ("vqconvert X.Y.Z").
Readers keep unknown header keys in `extra`; a new layout gets a new format version.

Bitrate: one index per hop of 64 samples at 16 kHz is 250 frames/s; with K = 512 each index carries
log2(512) = 9 bits, so the indices are 16000 / 64 x 9 = 2,250 bit/s (about 281 bytes/s; a file stores
them in 16 bits each, so 500 bytes/s plus the header, and compresses well).
"""

from __future__ import annotations

import io
import json
import math
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from vqconvert import __version__
from vqconvert.config import HOP, SAMPLE_RATE
from vqconvert.errors import CodesError
from vqconvert.fileio import write_output, write_stdout

if TYPE_CHECKING:
    import torch

    from vqconvert.checkpoint import LoadedModel

MAGIC = b"VQCODES\0"
FORMAT_VERSION = 1
EXTENSION = ".vqc"
MAX_HEADER = 1 << 20  # a header beyond 1 MiB means a corrupt length field
_PREFIX = struct.Struct("<8sHI")
_KNOWN = (
    "sample_rate",
    "hop",
    "codebook_size",
    "frames",
    "samples",
    "fingerprint",
    "speaker",
    "source",
    "created_by",
)


def bitrate(sample_rate: int, hop: int, codebook_size: int) -> float:
    """Bits per second carried by the indices: sample_rate / hop * log2(K) (2,250 for 16 kHz, 64, 512)."""
    return sample_rate / hop * math.log2(codebook_size)


def is_codes_file(path: str | Path) -> bool:
    """True when `path` is a readable file starting with the codes magic."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    chunks, left = [], n
    while left > 0:
        b = stream.read(left)
        if not b:
            break
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


@dataclass
class CodesFile:
    """One utterance's code indices `(F,)` (uint16) with the facts needed to decode them."""

    indices: np.ndarray
    codebook_size: int
    fingerprint: str
    sample_rate: int = SAMPLE_RATE
    hop: int = HOP
    samples: int | None = None
    speaker: str | None = None
    source: str | None = None
    created_by: str = f"vqconvert {__version__}"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        idx = self.indices
        if not isinstance(idx, np.ndarray):  # a torch tensor or a list
            idx = idx.detach().cpu().numpy() if hasattr(idx, "detach") else np.asarray(idx)
        idx = np.asarray(idx).reshape(-1)
        if not 1 <= int(self.codebook_size) <= 65536:
            raise CodesError(f"codebook size {self.codebook_size} cannot be stored in 16-bit indices")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= int(self.codebook_size)):
            raise CodesError(f"code index out of range 0..{int(self.codebook_size) - 1}")
        self.indices = idx.astype(np.uint16)

    @property
    def frames(self) -> int:
        return int(self.indices.shape[0])

    @property
    def duration(self) -> float:
        """Seconds of audio these codes stand for."""
        n = self.samples if self.samples is not None else self.frames * self.hop
        return n / self.sample_rate

    @property
    def bitrate(self) -> float:
        return bitrate(self.sample_rate, self.hop, self.codebook_size)

    def tensor(self) -> torch.Tensor:
        """The indices as a LongTensor `(F,)`."""
        import torch

        return torch.from_numpy(self.indices.astype(np.int64))

    def header(self) -> dict:
        h = {
            "sample_rate": int(self.sample_rate),
            "hop": int(self.hop),
            "codebook_size": int(self.codebook_size),
            "frames": self.frames,
            "samples": None if self.samples is None else int(self.samples),
            "fingerprint": self.fingerprint,
            "speaker": self.speaker,
            "source": self.source,
            "created_by": self.created_by,
        }
        return {**self.extra, **h}

    # -- binary form -------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        head = json.dumps(self.header(), ensure_ascii=False, sort_keys=True).encode("utf-8")
        return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)) + head + self.indices.astype("<u2").tobytes()

    def write(self, stream: BinaryIO) -> None:
        stream.write(self.to_bytes())

    @classmethod
    def read(cls, stream: BinaryIO, name: str = "<stream>", exact: bool = False) -> CodesFile:
        """Read one codes file from `stream`. `exact=True` also refuses bytes after the indices.

        Every problem is a one-line CodesError starting with `name`.
        """
        prefix = _read_exact(stream, _PREFIX.size)
        if len(prefix) == 0:
            raise CodesError(f"{name}: file is empty (0 bytes)")
        if prefix[: len(MAGIC)] != MAGIC:
            if len(prefix) < len(MAGIC) and MAGIC.startswith(prefix):
                raise CodesError(f"{name}: truncated codes file (ends inside the magic bytes)")
            raise CodesError(f"{name}: not a vqconvert codes file (wrong magic bytes)")
        if len(prefix) < _PREFIX.size:
            raise CodesError(f"{name}: truncated codes file (ends before the header length)")
        _, version, head_len = _PREFIX.unpack(prefix)
        if version != FORMAT_VERSION:
            raise CodesError(
                f"{name}: codes format version {version} is not supported "
                f"(this vqconvert reads version {FORMAT_VERSION})"
            )
        if head_len > MAX_HEADER:
            raise CodesError(f"{name}: corrupt codes file (header length {head_len} bytes is implausible)")
        raw = _read_exact(stream, head_len)
        if len(raw) < head_len:
            raise CodesError(f"{name}: truncated codes file (header has {len(raw)} of {head_len} bytes)")
        try:
            head = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CodesError(f"{name}: corrupt codes header (broken JSON: {err})") from None
        if not isinstance(head, dict):
            raise CodesError(f"{name}: corrupt codes header (not a JSON object)")
        kw = _check_header(head, name)
        frames = kw.pop("frames")
        data = _read_exact(stream, 2 * frames)
        if len(data) < 2 * frames:
            raise CodesError(f"{name}: truncated codes file (holds {len(data) // 2} of {frames} frames)")
        if exact and stream.read(1):
            raise CodesError(f"{name}: corrupt codes file (data after the {frames} declared frames)")
        idx = np.frombuffer(data, dtype="<u2")
        k = kw["codebook_size"]
        if idx.size and int(idx.max()) >= k:
            bad = int(np.argmax(idx >= k))
            raise CodesError(
                f"{name}: code index {int(idx[bad])} at frame {bad} is out of range (codebook has {k} codes)"
            )
        extra = {key: v for key, v in head.items() if key not in _KNOWN}
        return cls(indices=idx.astype(np.uint16), extra=extra, **kw)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>") -> CodesFile:
        return cls.read(io.BytesIO(data), name, exact=True)

    # -- files -------------------------------------------------------------------------------------

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Write atomically (see vqconvert.fileio); "-" writes to stdout.

        OutputError when `path` exists and `overwrite` is False, or it cannot be written.
        """
        data = self.to_bytes()
        if str(path) == "-":
            write_stdout(data, "codes")
        else:
            write_output(path, data, overwrite=overwrite, hint=" (use --force)")

    @classmethod
    def load(cls, path: str | Path) -> CodesFile:
        """Read a codes file; "-" reads stdin. Every failure is a CodesError naming the file."""
        if str(path) == "-":
            return cls.read(sys.stdin.buffer, "<stdin>", exact=True)
        p = Path(path)
        if not p.exists():
            raise CodesError(f"{p}: no such file")
        if p.is_dir():
            raise CodesError(f"{p}: is a directory, not a codes file")
        try:
            with open(p, "rb") as fh:
                return cls.read(fh, str(p), exact=True)
        except OSError as err:
            raise CodesError(f"{p}: cannot read ({err.strerror or err})") from None

    # -- meaning -----------------------------------------------------------------------------------

    def check_compatible(self, loaded: LoadedModel, name: str | None = None) -> None:
        """CodesError unless these codes were made by `loaded`'s encoder and codebook (same K, hop,
        rate and fingerprint). `name` (the file) starts the message when given."""
        cfg = loaded.config
        pre = f"{name}: " if name else ""
        if self.codebook_size != cfg.codebook_size:
            raise CodesError(
                f"{pre}codes are for a codebook of {self.codebook_size} codes, this model has "
                f"{cfg.codebook_size}: made by another model"
            )
        if self.hop != cfg.hop or self.sample_rate != cfg.sample_rate:
            raise CodesError(
                f"{pre}codes are at {self.sample_rate} Hz / hop {self.hop}, this model works at "
                f"{cfg.sample_rate} Hz / hop {cfg.hop}"
            )
        if self.fingerprint != loaded.fingerprint:
            raise CodesError(
                f"{pre}codes were made by another model (fingerprint {self.fingerprint}, "
                f"this model {loaded.fingerprint}); decode them with that model"
            )


def _check_header(head: dict, name: str) -> dict:
    def need_int(key: str, lo: int, hi: int | None = None, optional: bool = False) -> int | None:
        v = head.get(key)
        if v is None and optional:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or v < lo or (hi is not None and v > hi):
            rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
            raise CodesError(f"{name}: corrupt codes header ({key!r} must be an integer {rng}, got {v!r})")
        return v

    def opt_str(key: str) -> str | None:
        v = head.get(key)
        if v is not None and not isinstance(v, str):
            raise CodesError(f"{name}: corrupt codes header ({key!r} must be a string, got {v!r})")
        return v

    fp = head.get("fingerprint")
    if not isinstance(fp, str) or not fp:
        raise CodesError(f"{name}: corrupt codes header (no model fingerprint)")
    return {
        "sample_rate": need_int("sample_rate", 1),
        "hop": need_int("hop", 1),
        "codebook_size": need_int("codebook_size", 1, 65536),
        "frames": need_int("frames", 0),
        "samples": need_int("samples", 0, optional=True),
        "fingerprint": fp,
        "speaker": opt_str("speaker"),
        "source": opt_str("source"),
        "created_by": opt_str("created_by") or "unknown",
    }
