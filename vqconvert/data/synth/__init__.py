"""A synthetic multi-speaker English corpus from Debian's speech synthesizers.

Every synthesizer voice is one speaker: espeak-ng (a fixed set of its English voice variants), flite
(its built-in voices) and festival (the voices that are installed). The sentences come from the Debian
`fortunes` package (see data/README.md), so each utterance has an exact transcript.

Layout (the "generic" corpus layout): `OUT/<speaker>/<speaker>_<NNNN>.wav` (16 kHz mono PCM-16) with the
transcript in `<same stem>.txt`, plus `OUT/corpus.json`. Every engine is deterministic, so the same
inputs (seed, utterance count, voices, package versions) give byte-identical files.

Modules: `voices` (which voices, installed or not), `texts` (the sentences and their order), `render`
(text -> audio), `build` (the corpus and its manifest), `measure` (how alike voices sound). The names
below are re-exported here; patch module globals (e.g. `texts.FORTUNE_DIR`, `render.render_raw`) in
the module that defines them.
"""

from vqconvert.data.synth.build import CHUNK, FORMAT, MANIFEST, build_synth_corpus
from vqconvert.data.synth.measure import MEASURE_TEXTS, measure_voices, voice_distance, voice_features
from vqconvert.data.synth.render import render_raw, render_to_arrays
from vqconvert.data.synth.texts import (
    FORTUNE_DIR,
    FORTUNE_FILES,
    MAX_WORDS,
    MIN_WORDS,
    load_sentences,
    plain_sentence,
    sentence_order,
)
from vqconvert.data.synth.voices import (
    ENGINES,
    ESPEAK_DEFAULT,
    FESTIVAL_KNOWN,
    FLITE_DEFAULT,
    INSTALL_HINT,
    PACKAGES,
    Voice,
    available_voices,
    default_voices,
    engine_installed,
    engine_versions,
    espeak_voice,
    package_versions,
    resolve_voice,
    voice_installed,
)

__all__ = [
    "CHUNK",
    "ENGINES",
    "ESPEAK_DEFAULT",
    "FESTIVAL_KNOWN",
    "FLITE_DEFAULT",
    "FORMAT",
    "FORTUNE_DIR",
    "FORTUNE_FILES",
    "INSTALL_HINT",
    "MANIFEST",
    "MAX_WORDS",
    "MEASURE_TEXTS",
    "MIN_WORDS",
    "PACKAGES",
    "Voice",
    "available_voices",
    "build_synth_corpus",
    "default_voices",
    "engine_installed",
    "engine_versions",
    "espeak_voice",
    "load_sentences",
    "measure_voices",
    "package_versions",
    "plain_sentence",
    "render_raw",
    "render_to_arrays",
    "resolve_voice",
    "sentence_order",
    "voice_distance",
    "voice_features",
    "voice_installed",
]
