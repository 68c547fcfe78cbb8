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

Modules: `options` (EvalOptions, constants), `metrics` (MCD/DTW, codebook and bitrate math, NLL, noise
controls), `selection` (the split, utterances, targets, audio preparation), `generation` (encoding,
generating, saving, reconstruction metrics), `judging` (speaker judge, ASR), `report` (summaries, JSON),
`table` (the rich table), `runner` (the Evaluator tying them together).
"""

from vqconvert.evaluation.metrics import (
    bits_per_sample,
    codebook_stats,
    dtw_path,
    entropy_bits,
    mcd,
    mel_cepstrum,
    mel_filterbank,
    noise_answers,
    noise_clips,
    nominal_bitrate,
    perplexity,
)
from vqconvert.evaluation.options import (
    METRICS,
    NOISE_KINDS,
    OPTIONAL_JUDGES,
    RESULT_KEYS,
    SPLITS,
    TRIM_DB,
    EvalError,
    EvalOptions,
)
from vqconvert.evaluation.report import json_safe
from vqconvert.evaluation.runner import Evaluator, evaluate
from vqconvert.evaluation.selection import (
    default_targets,
    prepare_audio,
    select_utterances,
    train_split_settings,
    training_roots,
)

__all__ = [
    "METRICS",
    "NOISE_KINDS",
    "OPTIONAL_JUDGES",
    "RESULT_KEYS",
    "SPLITS",
    "TRIM_DB",
    "EvalError",
    "EvalOptions",
    "Evaluator",
    "bits_per_sample",
    "codebook_stats",
    "default_targets",
    "dtw_path",
    "entropy_bits",
    "evaluate",
    "json_safe",
    "mcd",
    "mel_cepstrum",
    "mel_filterbank",
    "noise_answers",
    "noise_clips",
    "nominal_bitrate",
    "perplexity",
    "prepare_audio",
    "select_utterances",
    "train_split_settings",
    "training_roots",
]
