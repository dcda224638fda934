"""Praat TextGrids out (through praatio), written atomically: the one writer of the data layer (the
espeak corpus' true intervals) and of the aligner (`jaxalign.aligner.export`)."""

import os
import tempfile
from pathlib import Path


def write_atomically(path, write) -> Path:
    """Calls `write(temporary path)` and renames the result to `path`: `path` is either the complete
    new file or untouched. The folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_textgrid(path, tiers: dict, duration: float) -> Path:
    """A Praat TextGrid (long format) with one interval tier per entry of `tiers` ({name: intervals},
    each an object with `begin`, `end`, `label` in seconds, such as `jaxalign.aligner.export.Interval`,
    or a `(begin, end, label)` tuple), from 0 to `duration` seconds; gaps between intervals are empty
    intervals."""
    from praatio import textgrid

    grid = textgrid.Textgrid()
    for name, entries in tiers.items():
        rows = [(iv.begin, iv.end, iv.label) if hasattr(iv, "begin") else tuple(iv) for iv in entries]
        grid.addTier(textgrid.IntervalTier(name, rows, 0.0, duration))
    return write_atomically(path, lambda tmp: grid.save(str(tmp), format="long_textgrid", includeBlankSpaces=True))
