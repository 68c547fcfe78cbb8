"""The C kernel of the fast CPU generator as a library: building it, finding and loading a build that
matches this source and CPU, and its ctypes ABI (`ModelStruct`, `JobStruct`). The engine that drives it
is `vqconvert.generate.fast`.

Build:  python -m vqconvert.generate.clib --build   (gcc -O3 -march=native, into the package directory
as vqconvert/_wavenet_gen.so; or into ~/.cache/vqconvert when that is not writable).  At run time a missing
or stale library (other source, compiler flags or CPU) is rebuilt once; if that fails, generation falls
back to the torch backend with one `GeneratorWarning`.

Environment: CC (compiler, default gcc), VQCONVERT_NO_BUILD=1 (never compile at run time).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

PKG_DIR = Path(__file__).resolve().parents[1]
SRC = PKG_DIR / "csrc" / "wavenet_gen.c"
LIB_NAME = "_wavenet_gen.so"
FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-pthread", "-std=gnu11", "-fno-math-errno"]
PORTABLE_FLAGS = ["-O3", "-fPIC", "-shared", "-pthread", "-std=gnu11", "-fno-math-errno"]


class GeneratorWarning(UserWarning):
    """A generation backend was asked for but another one runs (same samples up to float rounding)."""


@dataclass
class LoadState:
    """What this process knows about the library: loaded, tried, why not, warned."""

    lib: ctypes.CDLL | None = None
    tried: bool = False
    error: str | None = None
    warned: bool = False


STATE = LoadState()
_lock = threading.Lock()

MODEL_PTRS = ("dil", "embed", "wd", "wr", "ws", "br", "bs", "wh1", "bh1", "wh2", "bh2")


class ModelStruct(ctypes.Structure):
    """`wg_model` of wavenet_gen.c: sizes, then pointers to the tiled weights."""

    _fields_ = [(n, ctypes.c_int) for n in ("L", "R", "G", "S", "H", "Q", "fp16")] + [
        (n, ctypes.c_void_p) for n in MODEL_PTRS
    ]


class JobStruct(ctypes.Structure):
    """`wg_job` of wavenet_gen.c: one call's streams, state, conditioning, uniforms and outputs."""

    _fields_ = [
        ("nact", ctypes.c_int32),
        ("nsteps", ctypes.c_int32),
        ("nthreads", ctypes.c_int32),
        ("greedy", ctypes.c_int32),
        ("inv_temp", ctypes.c_float),
        ("idx", ctypes.c_void_p),
        ("queues", ctypes.c_void_p),
        ("qstride", ctypes.c_int64),
        ("prev", ctypes.c_void_p),
        ("tpos", ctypes.c_void_p),
        ("cond", ctypes.c_void_p),
        ("cidx", ctypes.c_void_p),
        ("cbs", ctypes.c_int64),
        ("cts", ctypes.c_int64),
        ("cbase", ctypes.c_int64),
        ("cdiv", ctypes.c_int32),
        ("unif", ctypes.c_void_p),
        ("forced", ctypes.c_void_p),
        ("logits", ctypes.c_void_p),
        ("out", ctypes.c_void_p),
        ("solo_step", ctypes.c_int32),
    ]


def compiler() -> str:
    """The C compiler: $CC, else gcc."""
    return os.environ.get("CC") or "gcc"


def _cpu_signature() -> str:
    sig = [platform.machine()]
    try:
        with open("/proc/cpuinfo") as f:
            seen = set()
            for line in f:
                key = line.split(":", 1)[0].strip()
                if key in ("model name", "flags", "Features") and key not in seen:
                    seen.add(key)
                    sig.append(line.strip())
    except OSError:
        sig.append(platform.processor())
    return "\n".join(sig)


def build_id(flags: list[str] | None = None) -> str:
    """Hash of what the library depends on: the C source, compiler and flags, and this CPU."""
    h = hashlib.sha256()
    h.update(SRC.read_bytes())
    h.update(" ".join([compiler()] + (flags or FLAGS)).encode())
    h.update(_cpu_signature().encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where a build goes when the package directory is not writable."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vqconvert"


def candidates() -> list[Path]:
    """Where a build is looked for, in order: the package directory, then the user cache."""
    return [PKG_DIR / LIB_NAME, cache_dir() / f"_wavenet_gen-{build_id()}.so"]


def build(dest: Path | None = None) -> Path:
    """Compile the kernel into `dest` (a file path; default: the package dir, else the user cache).
    Atomic (temp file + rename), so concurrent builds are safe.  Raises RuntimeError on failure."""
    cc = compiler()
    if shutil.which(cc) is None:
        raise RuntimeError(f"C compiler {cc!r} not found")
    targets = [Path(dest)] if dest is not None else candidates()
    errors = []
    for target in targets:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
        except OSError as e:
            errors.append(f"{target.parent}: {e.strerror or e}")
            continue
        try:
            for flags in (FLAGS, PORTABLE_FLAGS):
                bid = build_id(flags)
                cmd = [cc, *flags, f'-DWG_BUILD_ID="{bid}"', str(SRC), "-o", tmp, "-lm"]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode == 0:
                    break
                errors.append(f"{' '.join(cmd)}: {res.stderr.strip()[-2000:]}")
            else:
                continue
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
            return target
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise RuntimeError("cannot build the C generator:\n" + "\n".join(errors))


def open_library(path: Path) -> ctypes.CDLL | None:
    """Load a built library if it exists and was built from this source for this CPU."""
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    ids = [build_id(FLAGS), build_id(PORTABLE_FLAGS)]
    if not any(f"WGBUILDID:{i};".encode() in blob for i in ids):
        return None
    try:
        lib = ctypes.CDLL(str(path))
        lib.wg_build_id.restype = ctypes.c_char_p
        got = lib.wg_build_id().decode()
    except (OSError, AttributeError):
        return None
    if got.rstrip(";") not in ids:
        return None
    lib.wg_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.wg_run.restype = ctypes.c_int
    if lib.wg_sizeof_model() != ctypes.sizeof(ModelStruct) or lib.wg_sizeof_job() != ctypes.sizeof(JobStruct):
        return None
    return lib


def load(allow_build: bool = True) -> ctypes.CDLL | None:
    """The kernel library, building it once per process if needed; None if unavailable."""
    with _lock:
        state = STATE
        if state.lib is not None or state.tried:
            return state.lib
        state.tried = True
        for p in candidates():
            lib = open_library(p)
            if lib is not None:
                state.lib = lib
                return lib
        if not allow_build or os.environ.get("VQCONVERT_NO_BUILD"):
            state.error = "C generator not built (python -m vqconvert.generate.clib --build)"
            return None
        try:
            lib = open_library(build())
            if lib is None:
                raise RuntimeError("built library does not load")
        except (RuntimeError, OSError) as e:
            state.error = str(e).splitlines()[0]
            return None
        state.lib = lib
        return lib


def warn_fallback() -> None:
    """One GeneratorWarning per process when the C backend was wanted but cannot be used."""
    if not STATE.warned:
        STATE.warned = True
        warnings.warn(
            f"fast C generator unavailable ({STATE.error}); using the slower torch generator",
            GeneratorWarning,
            stacklevel=3,
        )


def main(argv: list[str] | None = None) -> int:
    """`python -m vqconvert.generate.clib --build [--force] [--dest FILE]`."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m vqconvert.generate.clib", description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="store_true", help="compile the C kernel (if missing or stale)")
    ap.add_argument("--force", action="store_true", help="rebuild even if an up-to-date build exists")
    ap.add_argument("--dest", type=Path, help="output file (default: the package directory)")
    args = ap.parse_args(argv)
    if not args.build:
        ap.print_help()
        return 0
    target = args.dest
    if not args.force:
        for p in [target] if target else candidates():
            if open_library(p) is not None:
                print(f"up to date: {p}")
                return 0
    try:
        print(f"built {build(target)}")
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
