"""Brute-force references: enumerate every monotone path of small grids in plain Python."""

import itertools

import numpy as np


def lengths(paddings) -> np.ndarray:
    return (np.asarray(paddings) == 0).sum(axis=1)


def monotone_paths(num_frames: int, num_rows: int):
    """Every row sequence of length T starting at 0, ending at L-1, steps of 0 or +1."""
    if num_rows < 1 or num_rows > num_frames:
        return
    for moves in itertools.combinations(range(1, num_frames), num_rows - 1):
        rows, row = [], 0
        for t in range(num_frames):
            if t in moves:
                row += 1
            rows.append(row)
        yield rows


def path_score(log_probs_TxC, labels_L, rows) -> float:
    return float(sum(np.float64(log_probs_TxC[t, labels_L[r]]) for t, r in enumerate(rows)))


def brute_viterbi(log_probs, logit_paddings, labels, label_paddings):
    """Returns per example (best score or -inf, list of optimal row sequences)."""
    out = []
    for b, (t_b, l_b) in enumerate(zip(lengths(logit_paddings), lengths(label_paddings))):
        best, winners = -np.inf, []
        for rows in monotone_paths(int(t_b), int(l_b)):
            s = path_score(log_probs[b], labels[b], rows)
            if s > best + 1e-9:
                best, winners = s, [rows]
            elif abs(s - best) <= 1e-9:
                winners.append(rows)
        out.append((best, winners))
    return out


def brute_masked(log_probs, logit_paddings, labels, label_paddings):
    """Per-frame argmax over the target's rows, first row of the best symbol; returns positions."""
    out = []
    for b, (t_b, l_b) in enumerate(zip(lengths(logit_paddings), lengths(label_paddings))):
        rows = []
        for t in range(t_b if l_b else 0):
            scores = [log_probs[b, t, labels[b, r]] for r in range(l_b)]
            rows.append(int(np.argmax(scores)))
        out.append(rows)
    return out


def brute_forward(log_probs, logit_paddings, labels, label_paddings):
    """Per example (log of the summed path probabilities or -inf, (T, C) posterior occupancy: the
    probability that frame t is on a row of class c, zero on padded frames and where the sum is -inf)."""
    out = []
    for b, (t_b, l_b) in enumerate(zip(lengths(logit_paddings), lengths(label_paddings))):
        paths = list(monotone_paths(int(t_b), int(l_b)))
        scores = [path_score(log_probs[b], labels[b], rows) for rows in paths]
        total = np.logaddexp.reduce(scores) if paths else -np.inf
        occupancy = np.zeros(log_probs.shape[1:])
        if np.isfinite(total):
            for rows, score in zip(paths, scores):
                occupancy[np.arange(len(rows)), labels[b][rows]] += np.exp(score - total)
        out.append((float(total), occupancy))
    return out


def optional_paths(num_frames: int, optional: list[bool]):
    """Every row sequence of length T through a grid with optional rows: start in row 0 (or row 1
    when row 0 is optional), each step +0, +1 or +2 over an optional row, end in the last row (or
    the one before it when the last is optional). Enumerated by depth-first search."""
    num_rows = len(optional)
    if num_rows < 1 or num_frames < 1:
        return
    ends = {num_rows - 1} | ({num_rows - 2} if optional[-1] and num_rows >= 2 else set())
    starts = [0] + ([1] if optional[0] and num_rows >= 2 else [])

    def extend(rows):
        if len(rows) == num_frames:
            if rows[-1] in ends:
                yield list(rows)
            return
        row = rows[-1]
        for step in (0, 1, 2):
            nxt = row + step
            if nxt >= num_rows or (step == 2 and not optional[row + 1]):
                continue
            yield from extend([*rows, nxt])

    for start in starts:
        yield from extend([start])


def score_or_neg_inf(log_probs_TxC, labels_L, rows) -> float:
    """`path_score` with +inf log-probs counted as -inf (the kernels' convention under jit; NaN too,
    though a NaN on a valid frame leaves its sequence no path, see `brute_optional`)."""
    values = np.array([log_probs_TxC[t, labels_L[r]] for t, r in enumerate(rows)], np.float64)
    values[np.isnan(values) | (values == np.inf)] = -np.inf
    return float(values.sum())


def brute_optional(log_probs, logit_paddings, labels, label_paddings, optional_rows):
    """Per example (best score, optimal row sequences, log-sum over paths, (T, C) occupancy) over
    the grid with optional rows; score -inf and no paths where none fits, or where a valid frame
    holds a NaN (the kernels' convention under jit)."""
    out = []
    for b, (t_b, l_b) in enumerate(zip(lengths(logit_paddings), lengths(label_paddings))):
        paths = list(optional_paths(int(t_b), [bool(o) for o in optional_rows[b][:l_b]]))
        if np.isnan(np.asarray(log_probs[b][:t_b], np.float64)).any():
            paths = []
        scores = [score_or_neg_inf(log_probs[b], labels[b], rows) for rows in paths]
        best = max(scores, default=-np.inf)
        winners = [rows for rows, s in zip(paths, scores) if abs(s - best) <= 1e-9 or s == best]
        total = np.logaddexp.reduce(scores) if paths else -np.inf
        occupancy = np.zeros(log_probs.shape[1:])
        if np.isfinite(total):
            for rows, score in zip(paths, scores):
                occupancy[np.arange(len(rows)), labels[b][rows]] += np.exp(score - total)
        out.append((best, winners, float(total), occupancy, bool(paths)))
    return out
