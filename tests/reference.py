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


def graph_paths(num_frames: int, emissions, arcs, weights, stay, start, final):
    """Every path of T frames through one left-to-right graph (NumPy arrays of one sequence, as in
    `jaxalign.align.graph.Graph`): a list of (states, weight sum, moves), where moves[t] is how frame
    t+1 was reached, -1 for the stay or the arc's slot k. Parallel arcs are separate paths. Padded
    states (emission -1) and arcs from them, or not from an earlier state, are left out."""
    num_states = len(emissions)
    ok = [emissions[s] >= 0 for s in range(num_states)]
    out = {p: [] for p in range(num_states)}
    for s in range(num_states):
        for k, p in enumerate(arcs[s]):
            if 0 <= p < s and ok[p] and ok[s]:
                out[p].append((s, k))
    paths = []

    def extend(states, weight, moves):
        here = states[-1]
        if len(states) == num_frames:
            paths.append((list(states), weight + float(final[here]), list(moves)))
            return
        extend([*states, here], weight + float(stay[here]), [*moves, -1])
        for target, k in out[here]:
            extend([*states, target], weight + float(weights[target, k]), [*moves, k])

    if num_frames >= 1:
        for s in range(num_states):
            if ok[s]:
                extend([s], float(start[s]), [])
    return paths


def brute_graph(log_probs, logit_paddings, graph):
    """Per example: (best score, optimal state sequences, log-sum over paths, (T, C) occupancy, and
    the expected uses {"arc_weights": (S, K), "stay_weights": (S,), "start": (S,), "final": (S,)})
    over every path (`graph_paths`); -inf / no winners where no path has a finite score or a valid
    frame holds a NaN. +inf log-probs count as -inf."""
    graph = [np.asarray(x) for x in graph]
    emissions, arcs, weights, stay, start, final = graph
    out = []
    for b, t_b in enumerate(lengths(logit_paddings)):
        t_b = int(t_b)
        paths = graph_paths(t_b, emissions[b], arcs[b], weights[b], stay[b], start[b], final[b])
        if np.isnan(np.asarray(log_probs[b][:t_b], np.float64)).any():
            paths = []
        scores = [w + score_or_neg_inf(log_probs[b], emissions[b], states) for states, w, _ in paths]
        best = max(scores, default=-np.inf)
        finite = np.isfinite(best)
        winners = [p[0] for p, s in zip(paths, scores) if finite and abs(s - best) <= 1e-9]
        total = np.logaddexp.reduce(scores) if paths else -np.inf
        occupancy = np.zeros(log_probs.shape[1:])
        uses = {
            name: np.zeros(x.shape[1:]) for name, x in zip(("arc_weights", "stay_weights", "start", "final"), graph[2:])
        }
        if np.isfinite(total):
            for (states, _, moves), score in zip(paths, scores):
                p = np.exp(score - total)
                occupancy[np.arange(t_b), emissions[b][states]] += p
                uses["start"][states[0]] += p
                uses["final"][states[-1]] += p
                for t, k in enumerate(moves):
                    if k < 0:
                        uses["stay_weights"][states[t]] += p
                    else:
                        uses["arc_weights"][states[t + 1], k] += p
        out.append((best if finite else -np.inf, winners, float(total), occupancy, uses))
    return out
