"""One-off repair of the shipped model's run state (applied at step 1,560; see models/README.md).

Up to step 1,560 the decoder's speaker projection started from PyTorch's default init on top of
N(0, 1) speaker embeddings: every speaker got large random per-layer biases (norm ~28 against a
learned mean of ~3) that the embeddings, each seen in 1/55 of the crops, could not unlearn at the
training learning rate, so the true speaker's embedding fitted no better than a random one's.
The model now zero-initialises that projection; this script does the same to a run checkpoint
(weights and its Adam moments), keeping everything else, so the run resumes from there.

    .venv/bin/python models/reset-speaker-proj.py models/synth-small-run/latest.pt
"""

import sys
from pathlib import Path

from vqconvert.checkpoint import atomic_torch_save, build_model, load_checkpoint

path = Path(sys.argv[1])
ckpt = load_checkpoint(path)
names = [n for n, _ in build_model(ckpt).named_parameters()]
index = names.index("decoder.speaker_proj.weight")
ckpt["model"]["decoder.speaker_proj.weight"].zero_()
state = ckpt["optimizer"]["state"].get(index)
if state is not None:
    assert state["exp_avg"].shape == ckpt["model"]["decoder.speaker_proj.weight"].shape
    state["exp_avg"].zero_()
    state["exp_avg_sq"].zero_()
atomic_torch_save(ckpt, path)
print(f"{path}: speaker projection reset at step {ckpt['step']}")
