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

from jaxalign.align.viterbi import viterbi_align

_NEG_INF = -jnp.inf


class LongAlignment(NamedTuple):
    """positions: (T,) int32 sub-state row of each frame; score: the path's log-prob sum;
    width: the band width used; touched_edge: the path still touched a band edge at that width."""

    positions: np.ndarray
    score: float
    width: int
    touched_edge: bool


@functools.partial(jax.jit, static_argnames=("width",))
def banded_viterbi(log_probs_TxC, rows_L, band_start_T, *, width: int):
    """The grid's best path from row 0 at frame 0 to row L-1 at frame T-1 using only rows
    band_start_T[t] .. band_start_T[t] + width - 1 at frame t (band_start non-decreasing, 0 at t=0,
    L - width at the last frame, width <= L). Returns ((T,) int32 rows, score); score -inf where the
    band holds no path."""
    num_frames = log_probs_TxC.shape[0]
    num_rows = rows_L.shape[0]
    padded_rows = jnp.concatenate([rows_L.astype(jnp.int32), jnp.zeros(width, jnp.int32)])
    in_grid = jnp.arange(num_rows + width) < num_rows

    def emit(t, start):
        band_rows = jax.lax.dynamic_slice(padded_rows, (start,), (width,))
        ok = jax.lax.dynamic_slice(in_grid, (start,), (width,))
        e = log_probs_TxC[t][band_rows].astype(jnp.float32)
        return jnp.where(ok & ~jnp.isnan(e) & (e < jnp.inf), e, _NEG_INF)

    alpha0 = jnp.where(jnp.arange(width) == 0, emit(0, band_start_T[0]), _NEG_INF)

    def forward(alpha_W, t):
        shift = band_start_T[t] - band_start_T[t - 1]  # >= 0: the band moved down this many rows
        padded = jnp.concatenate([jnp.full(1, _NEG_INF), alpha_W, jnp.full(width + 1, _NEG_INF)])
        stay = jax.lax.dynamic_slice(padded, (jnp.minimum(shift, width) + 1,), (width,))
        move = jax.lax.dynamic_slice(padded, (jnp.minimum(shift, width + 1),), (width,))
        take_move = move > stay
        return jnp.maximum(move, stay) + emit(t, band_start_T[t]), take_move.astype(jnp.uint8)

    alpha_last, backptr_TxW = jax.lax.scan(forward, alpha0, jnp.arange(1, num_frames))
    last = num_rows - 1 - band_start_T[-1]

    def backward(row, inputs):  # row: absolute
        t, backptr_W = inputs
        prev = row - backptr_W[row - band_start_T[t]].astype(jnp.int32)
        return prev, prev

    _, rows_before = jax.lax.scan(backward, num_rows - 1, (jnp.arange(1, num_frames), backptr_TxW), reverse=True)
    return jnp.concatenate([rows_before, jnp.array([num_rows - 1])]).astype(jnp.int32), alpha_last[last]


def coarse_path(symbol_log_probs_TxS, symbols_U, pool: int) -> np.ndarray:
    """(T,) symbol row of each frame from the Viterbi path over frames pooled `pool` at a time."""
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


def long_viterbi(log_probs_TxC, rows_L, symbols_U, k: int, *, pool=4, width=512, max_width=8192, margin=8):
    """The best path of one long sequence through the grid of sub-state rows `rows_L` (L = U * k,
    the symbols `symbols_U` each k rows), by a coarse pass and a band around it (module docstring).
    log_probs_TxC: the head's log-probs over the sub-state classes (NumPy or JAX, T >= L)."""
    log_probs_TxC = np.asarray(log_probs_TxC, np.float32)
    num_frames, num_rows = len(log_probs_TxC), len(rows_L)
    num_symbols = log_probs_TxC.shape[1] // k
    symbol_lp = np.logaddexp.reduce(log_probs_TxC[:, : num_symbols * k].reshape(num_frames, num_symbols, k), axis=2)
    centre = coarse_path(symbol_lp, symbols_U, pool) * k + k // 2
    device_lp, device_rows = jnp.asarray(log_probs_TxC), jnp.asarray(rows_L, jnp.int32)
    width = min(width, num_rows)
    while True:
        starts = band_starts(centre, num_rows, width)
        positions, score = banded_viterbi(device_lp, device_rows, jnp.asarray(starts), width=width)
        positions = np.asarray(positions)
        offset = positions - starts
        low_edge = (offset < margin) & (starts > 0)
        high_edge = (offset >= width - margin) & (starts < num_rows - width)
        touched = bool(np.any(low_edge | high_edge))
        if not touched or width >= min(max_width, num_rows):
            return LongAlignment(positions, float(score), width, touched)
        width = min(2 * width, max_width, num_rows)
