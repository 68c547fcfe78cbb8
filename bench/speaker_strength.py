"""A mel net whose learnt speaker embeddings are pushed away from their mean by (1 + ALPHA): a render-time
"voice strength" tried for issue 14's transfer target (measured worse at ALPHA 0.5: models/README.md).

    python bench/speaker_strength.py models/vqconvert-synth-small.mel.pt 0.5 out/strength-0.5.mel.pt
then `vqconvert evaluate ... --vocoder griffin-lim --mel-net out/strength-0.5.mel.pt`.
"""

from __future__ import annotations

import argparse

import torch

from vqconvert.melnet.store import load_melnet, save_melnet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mel_net")
    ap.add_argument("alpha", type=float)
    ap.add_argument("output")
    args = ap.parse_args()
    m = load_melnet(args.mel_net)
    with torch.no_grad():
        w, learnt = m.net.speaker.weight, m.net.learnt
        mean = w[learnt].mean(0, keepdim=True)
        w[learnt] = mean + (1 + args.alpha) * (w[learnt] - mean)
    train = {**m.train, "speaker_strength": args.alpha}
    save_melnet(args.output, m.net, m.speakers, m.trained, m.fingerprint, metrics=m.metrics, train=train)


if __name__ == "__main__":
    main()
