"""Every error a user can cause, in one family: `jaxalign-train` and `jaxalign-align` print any
`JaxalignError` as one line (no traceback; `JAXALIGN_FULL_ERROR=1` shows it) and exit with status 1.

Each message names what is wrong (the key, the file, the example) and, where it can, what to do.
"""


class JaxalignError(Exception):
    """Base class: bad input, configuration or state that the user can fix; the message says what."""


class ConfigError(JaxalignError, ValueError):
    """A config value outside its allowed set, or keys that do not fit together; the message names the key."""


class DataFileError(JaxalignError, ValueError):
    """A data file that fails validation; the message names the key and the first bad example."""


class DataFileNotFoundError(DataFileError, FileNotFoundError):
    """`data.path` names no file (or a folder); the message says which, and where a folder belongs."""


class TimitError(JaxalignError, ValueError):
    """The TIMIT corpus on disk is missing or not in the expected layout."""


class SpokenWordsError(JaxalignError, ValueError):
    """A spoken_words setting that cannot work, or espeak-ng missing; the message names the key."""


class EspeakError(JaxalignError, RuntimeError):
    """espeak-ng is missing, fails to start, or rejects a voice or parameter."""


class EspeakCorpusError(JaxalignError, ValueError):
    """A setting that cannot work, a voice or word espeak-ng cannot speak, or an output folder in use."""


class CorpusError(JaxalignError, ValueError):
    """The corpus or its dictionary cannot be used at all (one bad recording is not: it is unaligned)."""


class CheckpointError(JaxalignError, RuntimeError):
    """A checkpoint directory that exists but cannot be restored."""


class RunDirBusy(JaxalignError, RuntimeError):
    """Another process holds the run directory's lock."""


class ResumeRefused(ConfigError):
    """The run dir's checkpoint cannot be continued as configured; nothing in it was touched."""


class TrainingDiverged(JaxalignError, RuntimeError):
    """The loss became NaN or infinite; the last finite metrics are in metrics.jsonl."""


class RunError(JaxalignError, ValueError):
    """A run directory, or input for it, that cannot be used; the message names what is wrong."""


class AlignmentOutputError(JaxalignError):
    """An output folder of `jaxalign-align` that cannot be written, or is in use by another call."""
