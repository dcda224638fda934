"""Forced alignment of one long recording (an hour: T = 360,000 frames, tens of thousands of rows),
where the grid's backpointers would not fit in memory (T x L bytes: 14 GB at L = 40,000).

The method: a first pass on a coarse grid, then a band of rows around it at full resolution.
1. Coarse pass: frames pooled `pool` at a time (mean log-prob) and one row per *symbol* (sub-states
   summed), solved by `viterbi_align` with 1-bit backpointers: (T / pool) x (L / k) bits.
2. Band: at frame t the path may only use rows band_t .. band_t + width - 1, centred on the coarse
   path (in sub-state rows) and moving down monotonically; `banded_viterbi` is the grid's Viterbi
   restricted to that band, (T x width) one-byte backpointers.
3. Check: where the band path comes within `margin` rows of a band edge that is not the grid's own
   edge, the band may have cut off the best path; the width is doubled and the band pass redone, up
   to `max_width`. If the path still touches an edge, the result says so (`touched_edge`).

What it gives up: exactness only where the best full-grid path leaves the band, which step 3 detects
and answers by widening. Memory is (T x width) bytes + the coarse (T/pool x L/k) bits; time is
linear in T x width. Written by hand: no library offers a banded, end-constrained Viterbi.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align.graph import Graph, grid_graph
from jaxalign.align.grid import Grid
from jaxalign.align.viterbi import viterbi_align

_NEG_INF = -jnp.inf


class LongAlignment(NamedTuple):
    """positions: (T,) int32 sub-state row of each frame; score: the path's log-prob sum;
    width: the band width used; touched_edge: the path still touched a band edge at that width."""

    positions: np.ndarray
    score: float
    width: int
    touched_edge: bool


def banded_graph_viterbi(log_probs_TxC, graph: Graph, band_start_T, *, width: int):
    """The best path through ONE left-to-right graph (a `Graph` whose fields have no batch axis:
    (S,) and (S, K)) using only states band_start_T[t] .. band_start_T[t] + width - 1 at frame t
    (band_start non-decreasing, 0 at t=0, S - width at the last frame, width <= S): `graph_viterbi`
    restricted to the band, with its tie-break (stay, then arc 0, 1, ...; the last of equal final
    states). The graph must be band-shaped: each arc slot k always comes from the same number
    D_k <= width of states back (`grid_graph`, `Grid.graph`: D = 1 and the skip's), so a frame reads
    its sources by slicing, not gathering (a gather per state made it 6x slower on a CPU). Returns
    ((T,) int32 states, score with the weights); score -inf where the band holds no path. NaN and
    +inf log-probs count as -inf here; `long_viterbi` refuses them."""
    arcs = np.asarray(graph.arcs)
    state_S = np.arange(len(arcs))
    used = arcs >= 0
    deltas = []
    for k in range(arcs.shape[1]):
        spans = np.unique(state_S[used[:, k]] - arcs[used[:, k], k])
        if len(spans) > 1 or (len(spans) and not 1 <= spans[0] <= width):
            raise ValueError(
                f"banded_graph_viterbi: arc slot {k} spans {spans.tolist()} states; a band-shaped graph's slot "
                f"always spans the same number, 1..width={width}"
            )
        deltas.append(int(spans[0]) if len(spans) else 1)
    return _banded(log_probs_TxC, graph, jnp.asarray(band_start_T), width=width, deltas=tuple(deltas))


@functools.partial(jax.jit, static_argnames=("width", "deltas"))
def _banded(log_probs_TxC, graph: Graph, band_start_T, *, width: int, deltas: tuple[int, ...]):
    """`banded_graph_viterbi` with arc slot k from deltas[k] states back."""
    num_frames = log_probs_TxC.shape[0]
    ok_S = graph.emissions >= 0
    arc_ok_SxK = (graph.arcs >= 0) & ok_S[:, None]

    def padded(x):  # per-state floats padded by `width` -inf states, so a band never reads past them
        return jnp.pad(x.astype(jnp.float32), [(0, width)] + [(0, 0)] * (x.ndim - 1), constant_values=_NEG_INF)

    classes = jnp.pad(jnp.maximum(graph.emissions, 0).astype(jnp.int32), (0, width))
    stay_weights, start, final = (
        padded(jnp.where(ok_S, getattr(graph, n), _NEG_INF)) for n in ("stay_weights", "start", "final")
    )
    arc_weights = [padded(w) for w in jnp.where(arc_ok_SxK, graph.arc_weights, _NEG_INF).T]  # per slot: 1-D slices

    def band(x, first):
        return jax.lax.dynamic_slice_in_dim(x, first, width)

    def emit(t, first):
        e = log_probs_TxC[t][band(classes, first)].astype(jnp.float32)
        return jnp.where(e < jnp.inf, e, _NEG_INF)  # NaN and +inf: -inf (padded states: -inf weights)

    alpha0 = band(start, band_start_T[0]) + emit(0, band_start_T[0])

    def forward(alpha_W, t):
        first = band_start_T[t]
        shift = first - band_start_T[t - 1]  # >= 0: the band moved down this many states
        # the previous band's alphas with `width` -inf each side: band row j's source D back is at j + shift - D + width
        padded_alpha = jnp.concatenate([jnp.full(width, _NEG_INF), alpha_W, jnp.full(width, _NEG_INF)])

        def back(delta):
            return jax.lax.dynamic_slice_in_dim(padded_alpha, jnp.minimum(shift - delta, width) + width, width)

        best = back(0) + band(stay_weights, first)
        code = jnp.zeros(width, jnp.uint8)
        for k, delta in enumerate(deltas):  # strictly better only: stay first, then arc 0, 1, ...
            arrive = back(delta) + band(arc_weights[k], first)
            code = jnp.where(arrive > best, jnp.uint8(k + 1), code)
            best = jnp.maximum(best, arrive)
        return best + emit(t, first), code

    alpha_last, backptr_TxW = jax.lax.scan(forward, alpha0, jnp.arange(1, num_frames))
    end_W = alpha_last + band(final, band_start_T[-1])
    end_state = band_start_T[-1] + width - 1 - jnp.argmax(end_W[::-1]).astype(jnp.int32)  # the last of equals
    back_K1 = jnp.asarray((0, *deltas), jnp.int32)

    def backward(state, inputs):  # state: absolute
        t, code_W = inputs
        prev = state - back_K1[code_W[state - band_start_T[t]]]
        return prev, prev

    _, before = jax.lax.scan(backward, end_state, (jnp.arange(1, num_frames), backptr_TxW), reverse=True)
    return jnp.concatenate([before, end_state[None]]).astype(jnp.int32), jnp.max(end_W)


def banded_viterbi(log_probs_TxC, rows_L, band_start_T, optional_L=None, *, width: int):
    """The grid's best path from row 0 at frame 0 to row L-1 at frame T-1 using only rows
    band_start_T[t] .. band_start_T[t] + width - 1 at frame t (as `banded_graph_viterbi`). optional_L:
    (L,) 1 = a row the path may skip, as in `viterbi_align` (then it may also start in row 1 and end
    in row L-2 past an optional first or last row), or None. Returns ((T,) int32 rows, score)."""
    rows = jnp.asarray(rows_L, jnp.int32)[None]
    optional = None if optional_L is None else jnp.asarray(optional_L)[None]
    graph = grid_graph(rows, jnp.zeros(rows.shape), optional)
    return banded_graph_viterbi(log_probs_TxC, jax.tree.map(lambda x: x[0], graph), band_start_T, width=width)


def coarse_path(symbol_log_probs_TxS, symbols_U, pool: int, optional_U=None) -> np.ndarray:
    """(T,) symbol row of each frame from the Viterbi path over frames pooled `pool` at a time
    (optional_U: (U,) symbols the path may skip, or None)."""
    num_frames = len(symbol_log_probs_TxS)
    pool = max(1, min(pool, num_frames // max(len(symbols_U), 1)))  # at least one pooled frame per symbol
    pooled_frames = num_frames // pool
    pooled = np.asarray(symbol_log_probs_TxS[: pooled_frames * pool], np.float32)
    pooled = pooled.reshape(pooled_frames, pool, -1).mean(axis=1)
    ali = viterbi_align(
        jnp.asarray(pooled)[None],
        jnp.zeros((1, pooled_frames)),
        jnp.asarray(symbols_U, jnp.int32)[None],
        jnp.zeros((1, len(symbols_U))),
        None if optional_U is None else jnp.asarray(optional_U, jnp.float32)[None],
        packed=True,
    )
    rows = np.repeat(np.asarray(ali.positions[0]), pool)
    return np.concatenate([rows, np.full(num_frames - len(rows), rows[-1])])


def band_starts(centre_T: np.ndarray, num_rows: int, width: int) -> np.ndarray:
    """(T,) int32 first band row per frame: centred on `centre_T`, inside the grid, non-decreasing,
    starting at row 0 and ending with the last row inside."""
    starts = np.clip(np.asarray(centre_T) - width // 2, 0, num_rows - width)
    starts = np.maximum.accumulate(starts)
    starts[0] = 0
    starts[-1] = num_rows - width
    return np.maximum.accumulate(starts).astype(np.int32)


def check_long_log_probs(log_probs_TxC: np.ndarray) -> None:
    """Refuses a NaN or +inf in one recording's (T, C) log-probs, naming the first frame that holds
    one (the pooled first pass would otherwise report a pooled frame, t // pool)."""
    for bad_T, what in (
        (np.isnan(log_probs_TxC).any(axis=1), "a NaN"),
        ((log_probs_TxC == np.inf).any(axis=1), "a +inf"),
    ):
        if bad_T.any():
            t = int(np.flatnonzero(bad_T)[0])
            raise ValueError(f"log_probs_TxC: frame {t} of {len(log_probs_TxC)} has {what} log-probability")


def long_viterbi(
    log_probs_TxC,
    rows_L,
    symbols_U,
    k: int,
    *,
    label_of_L=None,
    optional_L=None,
    pause_probability=None,
    pool=4,
    width=512,
    max_width=8192,
    margin=8,
):
    """The best path of one long sequence through the grid of sub-state rows `rows_L` (L = U * k,
    the symbols `symbols_U` each k rows; or, with `label_of_L`, row l belongs to symbol
    label_of_L[l], e.g. an optional silence's block of rows, see `substate_grid`), by a coarse pass
    and a band around it (module docstring). optional_L: (L,) rows of optional blocks (a symbol's
    rows, skipped whole), or None; pause_probability: the blocks' weights, as in `Grid.graph`.
    log_probs_TxC: the head's log-probs over the sub-state classes (NumPy or JAX, T >= L); a NaN or
    +inf in them is refused with a ValueError naming the first such frame of the recording (-inf is
    a log-probability)."""
    log_probs_TxC = np.asarray(log_probs_TxC, np.float32)
    check_long_log_probs(log_probs_TxC)
    num_frames, num_rows = len(log_probs_TxC), len(rows_L)
    num_symbols = log_probs_TxC.shape[1] // k
    symbol_lp = np.logaddexp.reduce(log_probs_TxC[:, : num_symbols * k].reshape(num_frames, num_symbols, k), axis=2)
    label_of_L = np.arange(num_rows) // k if label_of_L is None else np.asarray(label_of_L)
    optional_U = None
    if optional_L is not None:
        optional_U = np.zeros(len(symbols_U), np.float32)
        optional_U[label_of_L[np.asarray(optional_L) > 0]] = 1.0
    middle_U = np.bincount(label_of_L, weights=np.arange(num_rows), minlength=len(symbols_U)) / np.maximum(
        np.bincount(label_of_L, minlength=len(symbols_U)), 1
    )  # the middle row of each symbol
    centre = np.floor(middle_U[coarse_path(symbol_lp, symbols_U, pool, optional_U)] + 0.5).astype(np.int64)
    rows = jnp.asarray(rows_L, jnp.int32)[None]
    if optional_L is None:
        graph = grid_graph(rows, jnp.zeros(rows.shape))
    else:
        grid = Grid(
            rows, jnp.zeros(rows.shape), jnp.asarray(optional_L, jnp.float32)[None], jnp.asarray(label_of_L)[None]
        )
        graph = grid.graph(pause_probability)
    graph = jax.tree.map(lambda x: x[0], graph)
    device_lp = jnp.asarray(log_probs_TxC)
    width = min(width, num_rows)
    while True:
        starts = band_starts(centre, num_rows, width)
        positions, score = banded_graph_viterbi(device_lp, graph, jnp.asarray(starts), width=width)
        positions = np.asarray(positions)
        offset = positions - starts
        low_edge = (offset < margin) & (starts > 0)
        high_edge = (offset >= width - margin) & (starts < num_rows - width)
        touched = bool(np.any(low_edge | high_edge))
        if not touched or width >= min(max_width, num_rows):
            return LongAlignment(positions, float(score), width, touched)
        width = min(2 * width, max_width, num_rows)
