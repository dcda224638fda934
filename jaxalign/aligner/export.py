"""Alignments out to the formats other tools read: `.npz`, CTM and Praat TextGrid (through praatio).

An alignment here is one sequence's (T,) row per frame (`Run.align`); consecutive frames on the same
row become one interval [first frame * frame_shift, (last frame + 1) * frame_shift) in seconds,
labelled with the name of the symbol on that row.
"""

from pathlib import Path

import numpy as np

TIER = "phones"  # the TextGrid tier's name


def utterance_id(index: int) -> str:
    """The name of sequence `index` of a file: the `.npz` key, the CTM utterance and the TextGrid file."""
    return f"seq_{index:05d}"


def intervals(positions, labels, vocab, frame_shift: float) -> list[tuple[float, float, str]]:
    """(start s, end s, label) per run of equal rows in `positions` (T,); frames at -1 are left out."""
    positions = np.asarray(positions)
    starts = np.flatnonzero(np.diff(positions, prepend=-2) != 0)
    ends = np.append(starts[1:], len(positions))
    out = []
    for a, b in zip(starts, ends):
        row = int(positions[a])
        if row >= 0:
            out.append((round(a * frame_shift, 9), round(b * frame_shift, 9), vocab[int(labels[row])]))
    return out


def write_npz(path, alignments: dict[int, np.ndarray]) -> Path:
    """One int32 positions array per sequence, keyed `seq_00000`, ... (skipped sequences absent)."""
    path = Path(path)
    np.savez(path, **{utterance_id(i): np.asarray(p, np.int32) for i, p in alignments.items()})
    return path


def write_ctm(path, segments: dict[int, list]) -> Path:
    """`utt 1 start duration label` lines (seconds), sequences in index order."""
    lines = [
        f"{utterance_id(i)} 1 {start:.6g} {end - start:.6g} {label}"
        for i, ivs in sorted(segments.items())
        for start, end, label in ivs
    ]
    path = Path(path)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def write_textgrid(path, segments: list, duration: float) -> Path:
    """A Praat TextGrid with one interval tier (`phones`) from 0 to `duration` seconds."""
    from praatio import textgrid

    grid = textgrid.Textgrid()
    grid.addTier(textgrid.IntervalTier(TIER, segments, 0.0, duration))
    path = Path(path)
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    return path
