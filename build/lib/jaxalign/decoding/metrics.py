"""Evaluation metrics computed on the host from decoded labels and alignments."""

import numpy as np


def edit_distance(hyp, ref) -> int:
    """Levenshtein distance between two label sequences."""
    hyp, ref = list(hyp), list(ref)
    row = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, 1):
        prev, row[0] = row[0], i
        for j, r in enumerate(ref, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (h != r))
    return row[-1]


def label_error_rate(hyps, refs) -> float:
    """Sum of edit distances over sum of reference lengths."""
    errors = sum(edit_distance(h, r) for h, r in zip(hyps, refs))
    return errors / max(sum(len(r) for r in refs), 1)


def boundaries(rows: np.ndarray) -> np.ndarray:
    """Frames at which a monotone row path enters a new row."""
    return np.flatnonzero(np.diff(rows) != 0) + 1


def boundary_error(pred_rows: np.ndarray, true_rows: np.ndarray) -> float | None:
    """Mean |predicted - true| boundary frame, when both paths visit the same rows in order."""
    p, t = boundaries(pred_rows), boundaries(true_rows)
    if len(p) != len(t) or len(t) == 0:
        return None
    return float(np.mean(np.abs(p - t)))


class AlignmentScores:
    """Accumulates alignment accuracy and boundary error over sequences."""

    def __init__(self):
        self.correct = self.frames = 0
        self.boundary_sum = 0.0
        self.boundary_count = 0

    def add(self, pred_rows: np.ndarray, true_rows: np.ndarray) -> None:
        self.correct += int(np.sum(pred_rows == true_rows))
        self.frames += len(true_rows)
        err = boundary_error(pred_rows, true_rows)
        if err is not None:
            self.boundary_sum += err * (len(boundaries(true_rows)))
            self.boundary_count += len(boundaries(true_rows))

    def result(self) -> dict[str, float]:
        out = {"alignment_accuracy": self.correct / max(self.frames, 1)}
        if self.boundary_count:
            out["boundary_error"] = self.boundary_sum / self.boundary_count
        return out


def churn(old: list[np.ndarray], new: list[np.ndarray]) -> float:
    """Fraction of frames whose aligned row changed between two alignments of the same sequences."""
    changed = sum(int(np.sum(a != b)) for a, b in zip(old, new))
    return changed / max(sum(len(a) for a in new), 1)
