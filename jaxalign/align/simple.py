"""The notes' simpler alignments and the expand/compress pair.

- `masked_align`: per-frame MAP over the symbols present in the target, no order ("method 1").
- `uniform_align`: equal segmentation, the flat start that training begins from.
- `expand` / `compress`: symbol sequence <-> per-frame symbols; `greedy_decode` = argmax + compress.
"""

import functools

import jax
import jax.numpy as jnp

from jaxalign.align.types import (
    Alignment,
    check_aligner_inputs,
    check_array,
    check_same,
    infeasible_fill,
    is_feasible,
    lengths,
    nan_free,
    valid_mask,
)
from jaxalign.align.validate import checked_when_eager


@checked_when_eager
@jax.jit
def masked_align(log_probs, logit_paddings, labels, label_paddings) -> Alignment:
    """Per-frame best symbol among those in the target, ignoring their order (the notes' method 1).

    Shapes and padding as in `viterbi_align`. `positions` is the first row carrying the chosen
    symbol, so a repeated symbol always maps to its first occurrence. Ties between symbols go to the
    one that appears first in the target. `feasible` follows the same rule as `viterbi_align`
    (L_b >= 1 and L_b <= T_b) so the two can be swapped in training. Checked as `viterbi_align`
    is when called outside `jax.jit`.
    """
    check_aligner_inputs(log_probs, logit_paddings, labels, label_paddings)
    num_classes = log_probs.shape[2]
    label_len_B = lengths(label_paddings)
    row_ok_BxL = valid_mask(label_paddings)
    labels_BxL = jnp.clip(labels.astype(jnp.int32), 0, num_classes - 1)
    emit_BxTxL = jnp.take_along_axis(log_probs, labels_BxL[:, None, :], axis=2).astype(jnp.float32)
    emit_BxTxL = jnp.where(row_ok_BxL[:, None, :] & ~jnp.isnan(emit_BxTxL), emit_BxTxL, -jnp.inf)
    # argmax over rows returns the first maximal row: the first occurrence of the best symbol.
    positions_BxT = jnp.argmax(emit_BxTxL, axis=2).astype(jnp.int32)
    frame_ok_BxT = valid_mask(logit_paddings)
    chosen_BxT = jnp.take_along_axis(emit_BxTxL, positions_BxT[..., None], axis=2)[..., 0]
    score_B = jnp.sum(jnp.where(frame_ok_BxT, chosen_BxT, 0.0), axis=1)
    symbols_BxT = jnp.take_along_axis(labels.astype(jnp.int32), positions_BxT, axis=1)
    feasible_B = is_feasible(lengths(logit_paddings), label_len_B) & nan_free(log_probs, logit_paddings)
    return infeasible_fill(positions_BxT, symbols_BxT, score_B, feasible_B, frame_ok_BxT)


@jax.jit
def uniform_align(logit_paddings, label_paddings, labels=None) -> Alignment:
    """Equal segmentation of T_b frames into L_b rows (flat start).

    Each row gets q = T_b // L_b frames; the r = T_b % L_b remainder frames go one each to the
    *first* r rows. `symbols` are the labels at those rows when `labels` (B, L) is given, else -1.
    `score` is 0 for feasible rows (no log-probs are involved), -inf otherwise.
    """
    check_array("logit_paddings", logit_paddings, 2, "padding")
    check_array("label_paddings", label_paddings, 2, "padding")
    check_same({"logit_paddings": logit_paddings.shape[0], "label_paddings": label_paddings.shape[0]}, "batch sizes")
    if labels is not None:
        check_array("labels", labels, 2, "int")
        check_same({"labels": labels.shape, "label_paddings": label_paddings.shape}, "label shapes")
    frame_len_B = lengths(logit_paddings)
    label_len_B = lengths(label_paddings)
    feasible_B = is_feasible(frame_len_B, label_len_B)
    rows_B = jnp.maximum(label_len_B, 1)
    q_B = frame_len_B // rows_B
    r_B = frame_len_B % rows_B
    t_BxT = jnp.arange(logit_paddings.shape[1])[None, :]
    long_frames_B = r_B * (q_B + 1)
    in_long_BxT = t_BxT < long_frames_B[:, None]
    positions_BxT = jnp.where(
        in_long_BxT,
        t_BxT // (q_B + 1)[:, None],
        r_B[:, None] + (t_BxT - long_frames_B[:, None]) // jnp.maximum(q_B, 1)[:, None],
    )
    if labels is None:
        symbols_BxT = jnp.full_like(positions_BxT, -1)
    else:
        safe_BxT = jnp.clip(positions_BxT, 0, labels.shape[1] - 1)
        symbols_BxT = jnp.take_along_axis(labels.astype(jnp.int32), safe_BxT, axis=1)
    score_B = jnp.zeros(frame_len_B.shape, jnp.float32)
    return infeasible_fill(positions_BxT, symbols_BxT, score_B, feasible_B, valid_mask(logit_paddings))


@functools.partial(jax.jit, static_argnames=("num_frames",))
def _expand(labels, durations, num_frames):
    ends_BxL = jnp.cumsum(jnp.maximum(durations.astype(jnp.int32), 0), axis=1)
    t_T = jnp.arange(num_frames)
    rows_BxT = jax.vmap(lambda ends_L: jnp.searchsorted(ends_L, t_T, side="right"))(ends_BxL)
    valid_BxT = t_T[None, :] < ends_BxL[:, -1:]
    safe_BxT = jnp.clip(rows_BxT, 0, labels.shape[1] - 1)
    symbols_BxT = jnp.take_along_axis(labels.astype(jnp.int32), safe_BxT, axis=1)
    return jnp.where(valid_BxT, symbols_BxT, -1), (~valid_BxT).astype(jnp.float32)


def expand(labels, durations, *, num_frames: int | None = None):
    """Repeats each label for its duration: the notes' "expand".

    Args:
      labels: (B, L) int symbols. durations: (B, L) int frames per symbol; give padded rows 0.
      num_frames: T of the output. Static; when None it is max_b sum(durations), which needs
        concrete (not traced) durations.

    Returns:
      (frame_symbols (B, T) int32 with -1 on padded frames, frame_paddings (B, T) float32).
    """
    check_array("labels", labels, 2, "int")
    check_array("durations", durations, 2, "int")
    check_same({"labels": labels.shape, "durations": durations.shape}, "shapes")
    if num_frames is None:
        if isinstance(durations, jax.core.Tracer):
            raise ValueError("expand: pass num_frames=... when calling it under jit (durations are traced)")
        num_frames = int(jnp.max(jnp.sum(jnp.maximum(durations, 0), axis=1), initial=0))
    return _expand(labels, durations, num_frames)


@jax.jit
def compress(frame_symbols, paddings):
    """Merges runs of equal adjacent symbols and drops padded frames: the notes' "compress".

    Args:
      frame_symbols: (B, T) int per-frame symbols. paddings: (B, T) bool/float, 1 = padded.

    Returns:
      (labels (B, T) int32 left-aligned with -1 after the end, label_paddings (B, T) float32).
    """
    check_array("frame_symbols", frame_symbols, 2, "int")
    check_array("paddings", paddings, 2, "padding")
    check_same({"frame_symbols": frame_symbols.shape, "paddings": paddings.shape}, "shapes")
    frame_symbols = frame_symbols.astype(jnp.int32)
    valid_BxT = valid_mask(paddings)
    next_BxT = jnp.pad(frame_symbols[:, 1:], ((0, 0), (0, 1)), constant_values=-1)
    next_valid_BxT = jnp.pad(valid_BxT[:, 1:], ((0, 0), (0, 1)))
    # Keep the last frame of each run (the notes keep the last output of a repeat).
    keep_BxT = valid_BxT & ((next_BxT != frame_symbols) | ~next_valid_BxT)
    return left_pack(frame_symbols, keep_BxT)


def left_pack(values_BxT, keep_BxT):
    """Moves the kept entries of each row to the front, in order; -1 and padding after them."""
    order_BxT = jnp.argsort(~keep_BxT, axis=1, stable=True)
    packed_BxT = jnp.take_along_axis(values_BxT, order_BxT, axis=1)
    count_B = jnp.sum(keep_BxT, axis=1)
    pad_BxT = jnp.arange(values_BxT.shape[1])[None, :] >= count_B[:, None]
    return jnp.where(pad_BxT, -1, packed_BxT), pad_BxT.astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("blank_id",))
def greedy_decode(log_probs, logit_paddings, *, blank_id: int | None = None):
    """Per-frame argmax, then merge adjacent repeats (cannot tell "3 3" from "3": the notes' point).

    Args:
      log_probs: (B, T, C) float. logit_paddings: (B, T), 1 = padded.
      blank_id: for CTC best-path decoding, drop this class after merging.

    Returns:
      (labels (B, T) int32, label_paddings (B, T) float32) as from `compress`.
    """
    check_array("log_probs", log_probs, 3, "float")
    check_array("logit_paddings", logit_paddings, 2, "padding")
    check_same({"log_probs": log_probs.shape[:2], "logit_paddings": logit_paddings.shape}, "shapes")
    best_BxT = jnp.argmax(log_probs, axis=2).astype(jnp.int32)
    labels_BxT, label_pad_BxT = compress(best_BxT, logit_paddings)
    if blank_id is None:
        return labels_BxT, label_pad_BxT
    return left_pack(labels_BxT, (labels_BxT != blank_id) & (label_pad_BxT == 0))
