"""Viterbi alignment over the target-ordered grid (the notes' "method 2").

The grid of sequence b has one row per target symbol in order (a repeated symbol gets its own row)
and one column per frame. A path starts at row 0 on frame 0, ends at row L_b-1 on frame T_b-1, and
from each frame to the next either stays on its row or moves down one row.

Written by hand because no maintained JAX library offers a monotone, end-constrained Viterbi over a
per-example label grid: HMM libraries (dynamax) run a dense K x K transition per frame, and
optax only offers the CTC forward (sum) recursion.
"""

import functools

import jax
import jax.numpy as jnp

from jaxalign.align.types import (
    Alignment,
    check_aligner_inputs,
    check_optional_rows,
    end_rows,
    infeasible_fill,
    is_feasible,
    is_feasible_with,
    lengths,
    min_frames,
    nan_free,
    row_scores,
    scan_unroll,
    skip_ok,
    valid_mask,
)
from jaxalign.align.validate import checked_when_eager

_NEG_INF = -jnp.inf


_BITS = 32  # backpointers per packed word


def _pack(take_move_BxL):
    """(B, L) bool -> (B, ceil(L/32)) uint32, row l in bit l % 32 of word l // 32."""
    batch, num_rows = take_move_BxL.shape
    bits_BxL = jnp.pad(take_move_BxL, ((0, 0), (0, -num_rows % _BITS))).astype(jnp.uint32)
    words_BxWx32 = bits_BxL.reshape(batch, -(-num_rows // _BITS), _BITS) << jnp.arange(_BITS, dtype=jnp.uint32)
    return jnp.sum(words_BxWx32, axis=-1, dtype=jnp.uint32)  # distinct bits: the sum is their OR


def _unpack_at(packed_BxW, row_B):
    """The bit of row `row_B` in each sequence's packed words: (B,) uint32 0 or 1."""
    word_B = jnp.take_along_axis(packed_BxW, (row_B // _BITS)[:, None], axis=1)[:, 0]
    return (word_B >> (row_B % _BITS).astype(jnp.uint32)) & 1


@checked_when_eager
@functools.partial(jax.jit, static_argnames=("unroll", "packed"))
def viterbi_align(
    log_probs,
    logit_paddings,
    labels,
    label_paddings,
    optional_rows=None,
    *,
    unroll: int | None = None,
    packed: bool = False,
) -> Alignment:
    """Best monotone path through each sequence's target-ordered grid.

    Args:
      log_probs: (B, T, C) float32 or bfloat16 per-frame log-probabilities (the DP runs in float32).
      logit_paddings: (B, T) bool/float, 1 = padded frame; valid frames come first.
      labels: (B, L) int target symbols in order.
      label_paddings: (B, L) bool/float, 1 = padded row; valid rows come first.
      optional_rows: (B, L) bool/float, 1 = the path may skip this row, or None (every row is
        visited: the plain grid, bit for bit). Each frame stays on its row, moves down one row, or
        moves down two over an optional row; the path starts in row 0 (or row 1 when row 0 is
        optional) and ends in the last row (or the one before it when the last is optional); every
        mandatory row is visited. CTC's topology is this grid with optional blank rows
        (`ctc_forced_align`); so is an optional silence between words.
      unroll: frames per iteration of the scan loops, a speed knob with no effect on the result;
        None: 1 on CPU, 16 on GPU/TPU (`scan_unroll`).
      packed: keep the backpointers as bits, 32 rows to a uint32 word, instead of one byte each: 8x
        less memory for the (T, B, L) table, for a few more ops per frame; the same result.

    Returns:
      `Alignment`; `score` is the sum of log_probs along the path. +inf log-probs count as -inf (under
      `jit`); a sequence with a NaN on a valid frame is infeasible (no path, -1 everywhere, score -inf).
      Empty shapes are results, not errors: an empty batch (B = 0) gives empty (0, T) and (0,)
      outputs; no target rows (L = 0, or L_b = 0) or no frames (T = 0) make the sequences infeasible.

    Checks: called with concrete arrays (outside `jax.jit`) the arguments are checked first
    (`check_grid_arguments`: paddings 0/1 and right-padded, label ids in range on valid rows, no
    NaN or +inf log-prob on a valid frame) and a ValueError names the argument and example; under
    `jit` nothing is checked (one reduction finds the NaN sequences) and out-of-range ids are clipped.

    Tie-break (deterministic): where staying and moving down score the same, the path came from the
    same row, i.e. read forwards in time it moves down as early as possible (with optional rows:
    staying, then moving one row, then skipping; the last row before the one before it). Where every path scores
    -inf the result is still a valid monotone path (the earliest-moving one), with score -inf.
    Backpointers are one byte per cell (uint8; one bit with `packed`), and the backtrace runs on
    device in the same call.
    """
    check_aligner_inputs(log_probs, logit_paddings, labels, label_paddings)
    check_optional_rows(optional_rows, labels)
    unroll = scan_unroll(unroll)
    if optional_rows is not None:
        return _viterbi_optional(log_probs, logit_paddings, labels, label_paddings, optional_rows, unroll, packed)
    batch, num_frames, num_classes = log_probs.shape
    num_rows = labels.shape[1]
    frame_len_B = lengths(logit_paddings)
    label_len_B = lengths(label_paddings)
    feasible_B = is_feasible(frame_len_B, label_len_B) & nan_free(log_probs, logit_paddings)
    if num_rows == 0 or num_frames == 0:
        return no_grid(batch, num_frames)

    labels_BxL = jnp.clip(labels.astype(jnp.int32), 0, num_classes - 1)
    row_ok_BxL = valid_mask(label_paddings)
    log_probs_TxBxC = jnp.swapaxes(log_probs, 0, 1)

    def emit(log_probs_BxC):
        return row_scores(log_probs_BxC, labels_BxL, row_ok_BxL)

    alpha0_BxL = jnp.where(jnp.arange(num_rows)[None, :] == 0, emit(log_probs_TxBxC[0]), _NEG_INF)

    def forward(alpha_BxL, log_probs_BxC):
        # Kept minimal: on CPU each op in the loop body costs about a microsecond per frame.
        move_BxL = jnp.pad(alpha_BxL[:, :-1], ((0, 0), (1, 0)), constant_values=_NEG_INF)
        take_move_BxL = move_BxL > alpha_BxL
        backptr = _pack(take_move_BxL) if packed else take_move_BxL.astype(jnp.uint8)
        return jnp.maximum(move_BxL, alpha_BxL) + emit(log_probs_BxC), backptr

    _, backptr_TxBxL = jax.lax.scan(forward, alpha0_BxL, log_probs_TxBxC[1:], unroll=unroll)

    def backward(row_B, inputs):
        t, backptr = inputs
        step_B = _unpack_at(backptr, row_B) if packed else jnp.take_along_axis(backptr, row_B[:, None], axis=1)[:, 0]
        # Padded frames read "stay", so the backtrace from the last frame walks through them unchanged.
        # (Masked here rather than on the whole table, which would hold a second copy of it.)
        step_B = jnp.where(t < frame_len_B, step_B, 0)
        # Where all scores are -inf the pointers say "stay"; geometry (row <= frame) still forces
        # the move that keeps the path valid.
        prev_B = jnp.minimum(row_B - step_B.astype(jnp.int32), t - 1)
        return prev_B, prev_B

    last_row_B = jnp.maximum(label_len_B - 1, 0)
    frames = (jnp.arange(1, num_frames), backptr_TxBxL)
    _, rows_before_TxB = jax.lax.scan(backward, last_row_B, frames, reverse=True, unroll=unroll)
    positions_BxT = jnp.concatenate([rows_before_TxB, last_row_B[None, :]], axis=0).T
    return path_alignment(positions_BxT, log_probs, logit_paddings, labels, feasible_B)


def _viterbi_optional(log_probs, logit_paddings, labels, label_paddings, optional_rows, unroll, packed):
    """`viterbi_align` over a grid with optional rows: two more candidates per cell (the skip from
    row l-2), 2-bit backpointers (two bit planes when packed), and a backtrace that keeps to the
    cells a path can reach (`min_frames`) where every score is -inf."""
    batch, num_frames, num_classes = log_probs.shape
    num_rows = labels.shape[1]
    frame_len_B = lengths(logit_paddings)
    feasible_B = is_feasible_with(frame_len_B, label_paddings, optional_rows) & nan_free(log_probs, logit_paddings)
    if num_rows == 0 or num_frames == 0:
        return no_grid(batch, num_frames)

    labels_BxL = jnp.clip(labels.astype(jnp.int32), 0, num_classes - 1)
    row_ok_BxL = valid_mask(label_paddings)
    skip_BxL = skip_ok(optional_rows, row_ok_BxL)
    log_probs_TxBxC = jnp.swapaxes(log_probs, 0, 1)

    def emit(log_probs_BxC):
        return row_scores(log_probs_BxC, labels_BxL, row_ok_BxL)

    start_BxL = (jnp.arange(num_rows)[None, :] == 0) | ((jnp.arange(num_rows)[None, :] == 1) & skip_BxL)
    alpha0_BxL = jnp.where(start_BxL, emit(log_probs_TxBxC[0]), _NEG_INF)

    def forward(alpha_BxL, inputs):
        live_B, log_probs_BxC = inputs
        move_BxL = jnp.pad(alpha_BxL[:, :-1], ((0, 0), (1, 0)), constant_values=_NEG_INF)
        # Padded by two then cut to L (not alpha[:, :-2] padded: with L = 1 that is two columns).
        skip_from_BxL = jnp.pad(alpha_BxL, ((0, 0), (2, 0)), constant_values=_NEG_INF)[:, :num_rows]
        skip_from_BxL = jnp.where(skip_BxL, skip_from_BxL, _NEG_INF)
        take_skip_BxL = skip_from_BxL > move_BxL
        best_BxL = jnp.maximum(move_BxL, skip_from_BxL)
        take_any_BxL = best_BxL > alpha_BxL
        moved, skipped = take_any_BxL, take_any_BxL & take_skip_BxL
        backptr = (_pack(moved), _pack(skipped)) if packed else moved.astype(jnp.uint8) + skipped.astype(jnp.uint8)
        new_BxL = jnp.maximum(best_BxL, alpha_BxL) + emit(log_probs_BxC)
        return jnp.where(live_B[:, None], new_BxL, alpha_BxL), backptr  # frozen after T_b: the end is chosen there

    live_TxB = valid_mask(logit_paddings).T[1:]
    alphas_end_BxL, backptr_TxBxL = jax.lax.scan(forward, alpha0_BxL, (live_TxB, log_probs_TxBxC[1:]), unroll=unroll)
    frames_BxL = min_frames(label_paddings, optional_rows)
    last_B, before_ok_B = end_rows(label_paddings, optional_rows)
    at_last_B = jnp.take_along_axis(alphas_end_BxL, last_B[:, None], axis=1)[:, 0]
    before_B = jnp.take_along_axis(alphas_end_BxL, jnp.maximum(last_B - 1, 0)[:, None], axis=1)[:, 0]
    last_reach_B = jnp.take_along_axis(frames_BxL, last_B[:, None], axis=1)[:, 0] <= frame_len_B
    end_before_B = before_ok_B & ((before_B > at_last_B) | ((before_B == at_last_B) & ~last_reach_B))
    end_row_B = jnp.where(end_before_B, last_B - 1, last_B)

    def backward(row_B, inputs):
        t, backptr = inputs
        if packed:
            step_B = (_unpack_at(backptr[0], row_B) + _unpack_at(backptr[1], row_B)).astype(jnp.int32)
        else:
            step_B = jnp.take_along_axis(backptr, row_B[:, None], axis=1)[:, 0].astype(jnp.int32)
        step_B = jnp.where(t < frame_len_B, step_B, 0)  # padded frames read "stay"
        prev_B = row_B - step_B
        # Where every score is -inf the pointers say "stay": keep to cells a path reaches by frame t-1.
        reach_B = jnp.take_along_axis(frames_BxL, jnp.maximum(prev_B, 0)[:, None], axis=1)[:, 0] <= t
        prev_B = jnp.where(reach_B | (t >= frame_len_B), prev_B, _reachable_source(row_B, frames_BxL, t))
        return prev_B, prev_B

    frames = (jnp.arange(1, num_frames), backptr_TxBxL)
    _, rows_before_TxB = jax.lax.scan(backward, end_row_B, frames, reverse=True, unroll=unroll)
    positions_BxT = jnp.concatenate([rows_before_TxB, end_row_B[None, :]], axis=0).T
    return path_alignment(positions_BxT, log_probs, logit_paddings, labels, feasible_B)


def _reachable_source(row_B, frames_BxL, t):
    """The row above `row_B` if a path reaches it by frame t-1, else the one two above (the skip)."""
    above_B = jnp.maximum(row_B - 1, 0)
    reach_above_B = jnp.take_along_axis(frames_BxL, above_B[:, None], axis=1)[:, 0] <= t
    return jnp.where(reach_above_B, above_B, jnp.maximum(row_B - 2, 0))


def no_grid(batch: int, num_frames: int) -> Alignment:
    """The `Alignment` where the grid has no rows or no frames: every sequence infeasible."""
    empty = jnp.zeros((batch, num_frames), jnp.int32)
    return infeasible_fill(empty, empty, jnp.zeros((batch,)), jnp.zeros((batch,), bool), empty > 0)


def path_alignment(positions_BxT, log_probs, logit_paddings, labels, feasible_B) -> Alignment:
    """A path's rows -> `Alignment`: its symbols, its score summed from log_probs (NaN and +inf as -inf), and
    -1 / -inf where padded or infeasible. positions_BxT may hold anything on those entries."""
    num_classes = log_probs.shape[2]
    frame_ok_BxT = valid_mask(logit_paddings)
    positions_BxT = jnp.where(frame_ok_BxT & feasible_B[:, None], positions_BxT, 0)
    symbols_BxT = jnp.take_along_axis(labels.astype(jnp.int32), jnp.maximum(positions_BxT, 0), axis=1)
    path_BxT = jnp.take_along_axis(log_probs, jnp.clip(symbols_BxT, 0, num_classes - 1)[..., None], axis=2)[..., 0]
    path_BxT = path_BxT.astype(jnp.float32)
    path_BxT = jnp.where(frame_ok_BxT, jnp.where(jnp.isnan(path_BxT) | (path_BxT == jnp.inf), _NEG_INF, path_BxT), 0.0)
    score_B = jnp.sum(path_BxT, axis=1)
    return infeasible_fill(positions_BxT, symbols_BxT, score_B, feasible_B, frame_ok_BxT)
