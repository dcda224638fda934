"""Evaluation metrics computed on the host from decoded labels and alignments."""

import numpy as np


def edit_distance(hyp, ref) -> int:
    """Levenshtein distance between two label sequences: the row-by-row DP, each row in NumPy (the
    insertion chain along a row is a running minimum: new[j] = j + min over i <= j of (a[i] - i))."""
    hyp, ref = np.asarray(list(hyp)), np.asarray(list(ref))
    columns = np.arange(len(ref) + 1)
    row = columns.copy()
    for i, h in enumerate(hyp, 1):
        substitute = row[:-1] + (ref != h)
        best = np.concatenate([[i], np.minimum(row[1:] + 1, substitute)])
        row = np.minimum.accumulate(best - columns) + columns
    return int(row[-1])


def label_error_rate(hyps, refs) -> float:
    """Sum of edit distances over sum of reference lengths."""
    errors = sum(edit_distance(h, r) for h, r in zip(hyps, refs))
    return errors / max(sum(len(r) for r in refs), 1)


def boundaries(rows: np.ndarray) -> np.ndarray:
    """Frames at which a monotone row path enters a new row."""
    return np.flatnonzero(np.diff(rows) != 0) + 1


def signed_boundary_errors(pred_rows: np.ndarray, true_rows: np.ndarray) -> np.ndarray | None:
    """Predicted - true frame of each boundary, when both paths enter the same rows in order (the
    same number of boundaries, at least one); else None."""
    p, t = boundaries(pred_rows), boundaries(true_rows)
    if len(p) != len(t) or len(t) == 0:
        return None
    return p - t


def boundary_error(pred_rows: np.ndarray, true_rows: np.ndarray) -> float | None:
    """Mean |predicted - true| boundary frame, when both paths visit the same rows in order."""
    errors = signed_boundary_errors(pred_rows, true_rows)
    return None if errors is None else float(np.mean(np.abs(errors)))


class AlignmentScores:
    """Accumulates, over sequences: alignment accuracy (frames on their true row); and over the
    boundaries of sequences whose predicted path enters the same rows: the mean |error| in frames,
    the mean signed error (`boundary_shift`; < 0: the path moves on too early) and the share within
    2 frames (`boundaries_within_2`: 20 ms at a 10 ms hop, the usual forced-alignment figure)."""

    def __init__(self):
        self.correct = self.frames = 0
        self.errors: list[np.ndarray] = []  # signed boundary errors, predicted - true, per sequence

    def add(self, pred_rows: np.ndarray, true_rows: np.ndarray) -> None:
        self.correct += int(np.sum(pred_rows == true_rows))
        self.frames += len(true_rows)
        errors = signed_boundary_errors(pred_rows, true_rows)
        if errors is not None:
            self.errors.append(errors)

    def result(self) -> dict[str, float]:
        out = {"alignment_accuracy": self.correct / max(self.frames, 1)}
        if self.errors:
            errors = np.concatenate(self.errors)
            out["boundary_error"] = float(np.mean(np.abs(errors)))
            out["boundary_shift"] = float(np.mean(errors))
            out["boundaries_within_2"] = float(np.mean(np.abs(errors) <= 2))
        return out


def churn(old: list[np.ndarray], new: list[np.ndarray]) -> float:
    """Fraction of frames whose aligned row changed between two alignments of the same sequences."""
    changed = sum(int(np.sum(a != b)) for a, b in zip(old, new))
    return changed / max(sum(len(a) for a in new), 1)


_SLACK = 1e-9  # seconds: a boundary exactly at the tolerance is within it despite float rounding


def boundary_agreement(predicted, truth, tolerance: float = 0.020) -> dict:
    """Boundary accuracy of interval alignments in seconds (e.g. TextGrid tiers) against the true ones.

    predicted, truth: one list per recording of (begin, end, label) intervals with non-empty labels, in
    time order. A recording is compared when its label sequences are equal: each interval's begin and
    end are boundaries (a boundary two intervals share counts twice), paired in order, error |p - t|.
    Returns `boundaries` compared, `within_tolerance` (share with error <= tolerance), `mean_error_ms`,
    `median_error_ms` (None when no boundary is compared), `recordings` compared and `label_mismatches`
    (recordings skipped because their label sequences differ)."""
    if len(predicted) != len(truth):
        raise ValueError(f"boundary_agreement: {len(predicted)} predicted recordings, {len(truth)} true ones")
    errors, compared = [], 0
    for pred, true in zip(predicted, truth):
        if [str(label) for *_, label in pred] != [str(label) for *_, label in true]:
            continue
        compared += 1
        times = [np.asarray([(b, e) for b, e, _ in ivs], float).reshape(-1) for ivs in (pred, true)]
        errors.append(np.abs(times[0] - times[1]))
    errors = np.concatenate(errors) if errors else np.zeros(0)
    some = len(errors) > 0
    return {
        "boundaries": len(errors),
        "within_tolerance": float(np.mean(errors <= tolerance + _SLACK)) if some else None,
        "mean_error_ms": float(np.mean(errors) * 1000) if some else None,
        "median_error_ms": float(np.median(errors) * 1000) if some else None,
        "recordings": compared,
        "label_mismatches": len(truth) - compared,
    }
