"""A/B driver for issue 14's last lead: tune a model's encoder and codebook with its mel net's L1
(vqconvert.melnet.joint), or, with --freeze-encoder, train only the mel net on the same pipeline (the control
at equal time). Writes OUT.pt (the model with the tuned encoder and codebook; its WaveNet is unchanged and
does not match the new codes) and OUT.mel.pt, then judge them with bench/melnet_words.py.

    python bench/tune_encoder.py corpus/synth ../shared/vctk-mini --model M.pt --mel-net M.mel.pt \
        --max-minutes 60 --holdout 'flite-awb_000?' ... -o out/tuned [--freeze-encoder] [--json log.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from vqconvert.checkpoint import load_model, save_checkpoint
from vqconvert.config import HOP, preset
from vqconvert.data.cache import load_or_build_cache
from vqconvert.data.corpus import split_utterances
from vqconvert.devices import resolve_device
from vqconvert.melnet.data import MIN_FRAMES, hop_audio, model_split
from vqconvert.melnet.joint import AudioUtt, TuneConfig, tune_encoder
from vqconvert.melnet.store import load_melnet, save_melnet
from vqconvert.melnet.train import new_melnet
from vqconvert.model import VQVAE
from vqconvert.model.mel import LogMel


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fresh(name: str, loaded, train: list[AudioUtt], seed: int):
    """A new VQ-VAE of preset `name` and a new `small` mel net for `loaded`'s speakers."""
    torch.manual_seed(seed)
    model = VQVAE(preset(name, n_speakers=len(loaded.speakers)))
    return model, new_melnet("small", model.cfg.codebook_size, len(loaded.speakers), train)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpora", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--mel-net", required=True, help="the mel net to start from (trained on MODEL's codes)")
    ap.add_argument("--holdout", action="append", default=[])
    ap.add_argument("--max-minutes", type=float, default=60.0, help="0 = run all --steps")
    ap.add_argument("--steps", type=int, default=TuneConfig.steps, help="the cosine's length")
    ap.add_argument("--lr", type=float, default=TuneConfig.lr)
    ap.add_argument("--encoder-lr-ratio", type=float, default=TuneConfig.encoder_lr_ratio)
    ap.add_argument("--batch-size", type=int, default=TuneConfig.batch_size)
    ap.add_argument("--validate-every", type=int, default=TuneConfig.validate_every)
    ap.add_argument("--freeze-encoder", action="store_true")
    ap.add_argument(
        "--from-scratch",
        metavar="PRESET",
        help="instead of MODEL's encoder and MEL_NET's weights, a new VQ-VAE of this preset and a new `small` mel "
        "net (MODEL and MEL_NET still give the speakers and the split; the new model's WaveNet stays untrained): "
        "how fast a mel-trained encoder learns",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda, cuda:N")
    ap.add_argument("--cache-dir", default="cache")
    ap.add_argument("-o", "--output", required=True, help="prefix: writes PREFIX.pt and PREFIX.mel.pt")
    ap.add_argument("--json", help="append the metrics to this JSON-lines file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    mel = load_melnet(args.mel_net)
    mel.check_model(loaded)
    cache = load_or_build_cache(args.corpora, args.cache_dir)
    entries = [e for e in cache.utterances if e.speaker in mel.trained and e.length // HOP >= MIN_FRAMES]
    val_fraction, held = model_split(loaded, args.holdout)
    tr, va = split_utterances(entries, val_fraction, holdout=held)
    log_mel = LogMel(cache.sample_rate, mel.net.cfg.n_mels, HOP)
    position = {e.key: i for i, e in enumerate(cache.utterances)}

    def utt(e) -> AudioUtt:
        i = position[e.key]
        with torch.no_grad():
            m = log_mel(torch.from_numpy(hop_audio(cache, i))[None])[0].half()
        return AudioUtt(i, m, loaded.speakers.index(e.speaker), e.utt_id)

    train, val = [utt(e) for e in tr], [utt(e) for e in va]
    log(f"tune-encoder: {len(train)} utterances for training, {len(val)} held out, {len(mel.trained)} speakers")
    cfg = TuneConfig(
        steps=args.steps,
        max_minutes=args.max_minutes,
        lr=args.lr,
        batch_size=args.batch_size,
        validate_every=args.validate_every,
        freeze_encoder=args.freeze_encoder,
        encoder_lr_ratio=1.0 if args.from_scratch else args.encoder_lr_ratio,
        dead_code_restarts=bool(args.from_scratch),
        seed=args.seed,
    )
    model, net = loaded.model, mel.net
    if args.from_scratch:
        model, net = _fresh(args.from_scratch, loaded, train, args.seed)
    device = resolve_device(args.device)
    log(f"device: {device}")
    model, net, metrics = tune_encoder(model, net, cache, train, val, cfg, log, device)
    settings = {**cfg.to_dict(), "model": args.model, "mel_net": args.mel_net, "holdout": args.holdout}
    train_config, metrics_of_model, step = {}, {}, 0  # a new model: its WaveNet is untrained
    if args.from_scratch:
        settings["from_scratch"] = args.from_scratch
    else:  # what the starting net was: its own training settings and step count
        settings["continued_from"] = {
            "train": mel.train,
            "steps": mel.metrics.get("steps"),
            "val_l1": mel.metrics.get("val_l1"),
        }
        train_config = dict((loaded.meta or {}).get("train_config") or {})
        metrics_of_model, step = (loaded.meta or {}).get("metrics"), loaded.step
    train_config["tune_encoder"] = settings
    save_checkpoint(f"{args.output}.pt", model, loaded.speakers, step=step, train_config=train_config,
                    metrics=metrics_of_model, half=True)  # fmt: skip
    saved = load_model(f"{args.output}.pt")  # the fingerprint of the fp16 copy that was written
    save_melnet(f"{args.output}.mel.pt", net, loaded.speakers, mel.trained, saved.fingerprint, metrics=metrics,
                train=settings)  # fmt: skip
    log(f"wrote {args.output}.pt ({saved.fingerprint}) and {args.output}.mel.pt: {metrics['steps']} steps")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps({"output": args.output, **settings, **metrics}) + "\n")


if __name__ == "__main__":
    main()
