"""Frozen configs with named presets: `tiny` (tests), `small` (CPU), `paper` (the paper's VCTK size)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

SAMPLE_RATE = 16_000
HOP = 64  # 6 stride-2 convolutions
MU_CLASSES = 256
# Sampling temperature of decode / transfer / evaluate and of `vqconvert.inference`; `vqconvert.generate`
# itself defaults to 1.0 (the model's distribution). 0.8 converts better: models/README.md, "Choosing the
# checkpoint and the sampling temperature".
DEFAULT_TEMPERATURE = 0.8


def strict_from_dict(cls, d: dict, what: str):
    """A config dataclass from a saved dict; fields this version does not know are a ValueError (a file
    from a newer vqconvert), missing ones take their defaults (a file from an older one)."""
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} config fields: {sorted(unknown)}")
    return cls(**d)


@dataclass(frozen=True)
class ModelConfig:
    """Every size of the VQ-VAE. Saved in each checkpoint; the model is rebuilt from it alone."""

    preset: str = "small"
    sample_rate: int = SAMPLE_RATE
    # encoder
    enc_hidden: int = 128
    enc_res_blocks: int = 2
    latent_dim: int = 64  # D
    # quantizer
    codebook_size: int = 512  # K
    beta: float = 0.25
    ema: bool = False
    ema_decay: float = 0.99
    dead_code_steps: int = 20  # re-seed codes unused for this many training steps (0 = off)
    # decoder (WaveNet)
    n_speakers: int = 1
    speaker_dim: int = 32
    cond_channels: int = 64  # local conditioning channels after upsampling
    upsample: str = "repeat"  # "repeat" or "transposed"
    # Frame-rate conditioning network (codes + speaker -> residual dilated convs); 0 = the paper's single
    # k3 conv over the codes alone. Its context is +-(1 + sum of dilations) frames (cond_context).
    cond_blocks: int = 0
    # Auxiliary log-mel head on the conditioning features (L1 loss, weight mel_weight); 0 = none.
    mel_bins: int = 0
    mel_weight: float = 1.0
    # WaveNet conditioned on the predicted log-mel (needs cond_blocks and mel_bins): the code network feeds
    # only the mel head, and a second network of this many blocks over the predicted log-mel (gradient
    # stopped) and the speaker conditions every layer, so what the WaveNet hears has passed through a
    # log-mel. 0 = the WaveNet reads the code network's features directly.
    mel_cond_blocks: int = 0
    layers: int = 10  # per stack; dilations 1, 2, ..., 2**(layers-1)
    stacks: int = 2
    residual_channels: int = 64
    gate_channels: int = 128  # output of the dilated conv: half tanh, half sigmoid
    skip_channels: int = 128
    head_channels: int = 256
    mu_classes: int = MU_CLASSES

    @property
    def hop(self) -> int:
        return HOP

    @property
    def n_layers(self) -> int:
        return self.layers * self.stacks

    @property
    def dilations(self) -> list[int]:
        return [2 ** (i % self.layers) for i in range(self.n_layers)]

    @property
    def receptive_field(self) -> int:
        return sum(self.dilations) + 1

    @property
    def cond_dilations(self) -> list[int]:
        return [2 ** (i % 4) for i in range(self.cond_blocks)]

    @property
    def mel_cond_dilations(self) -> list[int]:
        return [2 ** (i % 4) for i in range(self.mel_cond_blocks)]

    @property
    def cond_context(self) -> int:
        """Frames each side that one frame's conditioning depends on."""
        mel_net = 1 + sum(self.mel_cond_dilations) if self.mel_cond_blocks > 0 else 0
        return 1 + sum(self.cond_dilations) + mel_net

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return strict_from_dict(cls, d, "model")


PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(
        preset="tiny",
        enc_hidden=32,
        enc_res_blocks=1,
        latent_dim=16,
        codebook_size=32,
        speaker_dim=8,
        cond_channels=16,
        layers=4,
        stacks=1,
        residual_channels=16,
        gate_channels=32,
        skip_channels=32,
        head_channels=32,
        dead_code_steps=10,
    ),
    "small": ModelConfig(preset="small"),
    # The paper's system with a frame-rate conditioning network and a log-mel head (issue 14).
    "small-cond": ModelConfig(preset="small-cond", cond_blocks=4, mel_bins=80),
    "paper": ModelConfig(
        preset="paper",
        enc_hidden=256,
        enc_res_blocks=2,
        latent_dim=64,
        codebook_size=512,
        speaker_dim=64,
        cond_channels=128,
        layers=10,
        stacks=3,
        residual_channels=256,
        gate_channels=512,
        skip_channels=256,
        head_channels=256,
    ),
}


PRESETS["tiny-cond"] = dataclasses.replace(PRESETS["tiny"], preset="tiny-cond", cond_blocks=2, mel_bins=20)
# The WaveNet conditioned on the log-mel predicted from codes and speaker (issue 14, arm D of the A/B).
PRESETS["small-melcond"] = dataclasses.replace(PRESETS["small-cond"], preset="small-melcond", mel_cond_blocks=2)
PRESETS["tiny-melcond"] = dataclasses.replace(PRESETS["tiny-cond"], preset="tiny-melcond", mel_cond_blocks=2)
PRESETS["paper-cond"] = dataclasses.replace(PRESETS["paper"], preset="paper-cond", cond_blocks=4, mel_bins=80)


def preset(name: str, **overrides) -> ModelConfig:
    """A named preset, optionally with some fields replaced (e.g. `n_speakers`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


SAMPLINGS = ("utterance", "duration")  # TrainConfig.sample_by


@dataclass(frozen=True)
class TrainConfig:
    """What `vqconvert train` was asked to do; saved in each checkpoint."""

    data: tuple[str, ...] = ()
    run_dir: str = "runs/default"
    preset: str = "small"
    steps: int = 10_000
    batch_size: int = 8
    crop_seconds: float = 0.5
    lr: float = 4e-4
    lr_schedule: str = "cosine"  # "cosine" or "constant"
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # "auto" (bf16 on CUDA, off on CPU), "bf16", "off"
    compile: bool = False
    # Encoder input pitch-shifted by U(-p, p) semitones (decoder target unchanged): the codes then cannot
    # carry a speaker's pitch and formant scale, so the decoder must take them from the speaker embedding.
    perturb_semitones: float = 0.0
    sample_by: str = "utterance"  # "utterance" (each clip once a pass) or "duration" (long clips more often)
    checkpoint_every: int = 500
    keep_every: int = 5000  # also keep a numbered checkpoint every N steps
    validate_every: int = 500
    val_fraction: float = 0.05
    val_batches: int = 8
    log_every: int = 10
    threads: int = 0  # CPU threads for torch; 0 = cores / local processes
    ema: bool = False
    # Training robustness (issue 14). prev_noise: Gaussian noise on the decoder's previous-sample input, in
    # mu-law index units, std drawn per crop from U(0, prev_noise) (exposure bias, as in LPCNet).
    prev_noise: float = 0.0
    # Models with mel_cond_blocks: probability per crop that the WaveNet is conditioned on the audio's true
    # log-mel rather than the predicted one (0 = always the prediction, as at inference).
    true_mel: float = 0.0
    # A model whose encoder and codebook are copied in and frozen (vqconvert.frozen_codes); "" = learn them.
    codes_from: str = ""
    # Encoder input only: random shift by up to enc_shift samples, gain U(-g, g) dB, white noise at an SNR
    # drawn from U(enc_noise_snr, enc_noise_snr + 30) dB (0 = off).
    enc_shift: int = 0
    enc_gain_db: float = 0.0
    enc_noise_snr: float = 0.0
    weights_ema: float = 0.0  # decay of an EMA copy of the weights used to validate, probe, export (0 = off)
    # In-training measurement: free-running generation of these held-out utterance ids every probe_every
    # steps (WER, STOI, log-mel L1, Griffin-Lim WER), at most probe_seconds each.
    probe: tuple[str, ...] = ()
    probe_every: int = 0
    probe_seconds: float = 3.0
    cache_dir: str = "cache"
    holdout: tuple[str, ...] = ()  # utterance ids / globs always kept for validation (e.g. p225_003)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["data"], d["holdout"], d["probe"] = list(self.data), list(self.holdout), list(self.probe)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        for key in ("data", "holdout", "probe"):
            d[key] = tuple(d.get(key, ()))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
