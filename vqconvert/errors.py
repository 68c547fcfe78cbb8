"""Exception types the CLI turns into one line on stderr and exit code 1."""


class VQConvertError(Exception):
    """Base class for every expected, user-facing failure."""


class AudioError(VQConvertError):
    """Audio that cannot be read, is empty, or holds NaN/inf samples."""


class DataError(VQConvertError):
    """A corpus or cache that cannot be used."""


class CheckpointError(VQConvertError):
    """A model file that is missing, corrupt, unsafe or of an unknown format."""


class CodesError(VQConvertError):
    """A codes file that is truncated, of another model, or otherwise invalid."""


class SpeakerError(VQConvertError):
    """A speaker name the model does not know."""


class OutputError(VQConvertError):
    """An output that would overwrite a file or cannot be written."""
