"""Alignments out to the formats other tools read: Praat TextGrid (through praatio), CTM, CSV and `.npz`.

Every writer takes *tiers*: {tier name: [`Interval`, ...]} in seconds, made from a path of frames by
`segments` and one `Clock`. Files are written atomically (a temporary file in the same folder, then
renamed), so an interrupted or failed write never leaves a partial file behind.

The clock: frame t is the analysis window that starts at t * hop and is `window` long. The boundary
between frames t - 1 and t is placed halfway between their centres, t * hop + (window - hop) / 2
(7.5 ms after t * hop with 25 ms windows every 10 ms): each frame then owns the stretch of audio
nearest its own centre, which is also how the spoken-words data assigns a frame its true phone (the
phone at its centre). The first interval starts at 0 and the last ends at the end of the audio. A
run without an audio front end (`.npz` features) has no window: its clock is `--frame-shift` with
the boundary at t * shift. Times are rounded to 0.1 ms.
"""

import csv
import dataclasses
import io
from pathlib import Path

import numpy as np

from jaxalign.data.textgrid import write_atomically, write_textgrid  # noqa: F401 (exported here too)

DECIMALS = 4  # seconds are rounded to 0.1 ms in every output


@dataclasses.dataclass(frozen=True)
class Clock:
    """Frame index -> seconds (module docstring). hop: seconds between frames; offset: seconds from
    frame t's start (t * hop) to the boundary before it."""

    hop: float
    offset: float = 0.0

    @classmethod
    def of_front_end(cls, front_end) -> "Clock":
        """The clock of an audio front end: a `jaxalign.data.audio.FrontEnd` (or anything with `hop`
        and `window` in seconds, such as its record in a checkpoint), or a data config with `hop_ms`
        and `frame_ms`."""
        if hasattr(front_end, "hop") and hasattr(front_end, "window"):
            return cls(front_end.hop, round((front_end.window - front_end.hop) / 2, 9))
        return cls(front_end.hop_ms / 1000, (front_end.frame_ms - front_end.hop_ms) / 2000)

    def duration(self, num_frames: int) -> float:
        """Seconds covered by `num_frames` frames when the audio's own length is unknown."""
        return round(num_frames * self.hop + (2 * self.offset if num_frames else 0.0), DECIMALS)

    def boundary(self, frame: int, num_frames: int, duration: float) -> float:
        """Seconds of the boundary before frame `frame` of `num_frames`, inside [0, duration]."""
        if frame <= 0:
            return 0.0
        if frame >= num_frames:
            return round(duration, DECIMALS)
        return round(min(frame * self.hop + self.offset, duration), DECIMALS)


@dataclasses.dataclass
class Interval:
    begin: float  # seconds
    end: float
    label: str
    confidence: float | None = None  # mean log-posterior of the label over the interval's frames
    pronunciation: int | None = None  # a word's: the index of its aligned pronunciation in the dictionary's list


def segments(positions_T) -> list[tuple[int, int, int]]:
    """(first frame, end frame, position) per run of equal values in `positions_T` (T,); runs at -1 are left out."""
    positions_T = np.asarray(positions_T)
    starts = np.flatnonzero(np.diff(positions_T, prepend=-2) != 0)
    ends = np.append(starts[1:], len(positions_T))
    return [(int(a), int(b), int(positions_T[a])) for a, b in zip(starts, ends) if positions_T[a] >= 0]


def utterance_id(index: int) -> str:
    """The name of sequence `index` of a file: the `.npz` key, the CTM utterance and the TextGrid file."""
    return f"seq_{index:05d}"


def write_text(path, text: str) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_ctm(path, tiers_of: dict[str, dict[str, list[Interval]]], tier: str) -> Path:
    """`utt 1 start duration label` lines (seconds) of one tier of each utterance, in key order."""
    lines = [
        f"{utt} 1 {iv.begin:.6g} {iv.end - iv.begin:.6g} {iv.label}"
        for utt, tiers in sorted(tiers_of.items())
        for iv in tiers[tier]
    ]
    return write_text(path, "".join(line + "\n" for line in lines))


def csv_text(header: list[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_intervals_csv(path, tiers_of: dict[str, dict[str, list[Interval]]], pronunciation: bool = False) -> Path:
    """`recording, tier, begin, end, label, confidence` rows, recordings in key order; with
    `pronunciation` a last column too, the `Interval.pronunciation` of each word (empty elsewhere)."""
    rows = [
        [rid, tier, f"{iv.begin:.{DECIMALS}f}", f"{iv.end:.{DECIMALS}f}", iv.label, f"{iv.confidence:.4f}"]
        + ([] if not pronunciation else ["" if iv.pronunciation is None else str(iv.pronunciation)])
        for rid, tiers in sorted(tiers_of.items())
        for tier, entries in tiers.items()
        for iv in entries
    ]
    header = ["recording", "tier", "begin", "end", "label", "confidence"] + (["pronunciation"] if pronunciation else [])
    return write_text(path, csv_text(header, rows))


def write_npz(path, alignments: dict[int, np.ndarray]) -> Path:
    """One int32 positions array per sequence, keyed `seq_00000`, ... (skipped sequences absent)."""
    arrays = {utterance_id(i): np.asarray(p, np.int32) for i, p in alignments.items()}

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return write_atomically(path, save)
