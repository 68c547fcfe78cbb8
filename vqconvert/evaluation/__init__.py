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

Modules: `options` (EvalOptions, constants), `dsp` (mel filter banks, power spectra, noise clips: shared
by the metrics and the judges), `metrics` (MCD/DTW, codebook math, NLL, noise answers), `judges` (the
external judges), `selection` (the split, utterances, targets, audio preparation), `state` (RunState,
EvalItem: the run's explicit state), `generation` (encoding, generating, saving, reconstruction metrics),
`judging` (speaker judge, ASR), `report` (summaries, JSON), `runner` (the Evaluator composing the steps).
The rich tables of the command are `vqconvert.cli.eval_table`.
"""

from __future__ import annotations

import importlib

# name -> the module that defines it; loaded on first use, so that `vqconvert.evaluation.options` (the
# CLI's defaults) imports without torch
_WHERE = {
    "NOISE_KINDS": "dsp",
    "mel_filterbank": "dsp",
    "noise_clips": "dsp",
    "bits_per_sample": "metrics",
    "codebook_stats": "metrics",
    "dtw_path": "metrics",
    "mcd": "metrics",
    "mel_cepstrum": "metrics",
    "noise_answers": "metrics",
    "METRICS": "options",
    "OPTIONAL_JUDGES": "options",
    "RESULT_KEYS": "options",
    "SPLITS": "options",
    "TRIM_DB": "options",
    "EvalError": "options",
    "EvalOptions": "options",
    "json_safe": "report",
    "Evaluator": "runner",
    "evaluate": "runner",
    "default_targets": "selection",
    "prepare_audio": "selection",
    "select_utterances": "selection",
    "train_split_settings": "selection",
    "training_roots": "selection",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
