"""Speaker names: lookup with a helpful message listing the closest known names."""

from __future__ import annotations

import difflib

from vqconvert.errors import SpeakerError


def resolve_speaker(name: str, speakers: list[str]) -> int:
    """Index of `name` in the model's speaker table (also accepts a plain index like '3')."""
    if name in speakers:
        return speakers.index(name)
    if name.isdigit() and int(name) < len(speakers):
        return int(name)
    close = difflib.get_close_matches(name, speakers, n=3, cutoff=0.4)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise SpeakerError(f"unknown speaker {name!r} (model has {len(speakers)} speakers{hint}; see `vqconvert speakers`)")
