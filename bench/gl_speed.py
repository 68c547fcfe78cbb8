"""Speed of the two renderers on the same codes, measured in one run: `--vocoder griffin-lim` (the mel
net's log-mel, Griffin-Lim) against the WaveNet sampler, seconds per second of audio and their ratio.

    OMP_NUM_THREADS=1 VQCONVERT_GEN_THREADS=1 python bench/gl_speed.py [--model M.pt] [--seconds 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vqconvert.checkpoint import load_model
from vqconvert.decoding import decode_codes
from vqconvert.melnet.store import default_melnet_path, load_melnet
from vqconvert.sampling import SamplingOptions
from vqconvert.shipped import default_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model or default_model())
    mel = load_melnet(default_melnet_path(loaded.path))
    mel.check_model(loaded)
    rng = np.random.default_rng(0)
    audio = torch.from_numpy((0.1 * rng.standard_normal(int(args.seconds * 16000) // 64 * 64)).astype(np.float32))
    codes = loaded.model.encode(audio[None])[0]
    secs = {}
    for name, kw in (("griffin-lim", {"vocoder": "griffin-lim", "mel_net": mel.net}), ("wavenet", {})):
        decode_codes(loaded.model, [codes[:250]], [0], SamplingOptions(seed=0), **kw)  # warm-up (C build, caches)
        t0 = time.perf_counter()
        decode_codes(loaded.model, [codes], [0], SamplingOptions(seed=0), **kw)
        secs[name] = (time.perf_counter() - t0) / args.seconds
        print(f"{name:12s} {secs[name]:.3f} s per second of audio ({args.threads} thread(s))", flush=True)
    print(f"griffin-lim / wavenet time ratio: {secs['griffin-lim'] / secs['wavenet']:.2f}")


if __name__ == "__main__":
    main()
