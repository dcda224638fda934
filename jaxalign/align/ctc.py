"""CTC forced alignment as a grid with optional rows: batched and jitted, where
`torchaudio.functional.forced_align` takes one sequence at a time.

CTC's topology for labels l_1 .. l_U is the grid of 2U + 1 rows `blank l_1 blank l_2 ... l_U blank`
whose blank rows are optional, except a blank between two equal labels (without it the path could
not tell "a a" from "a"). The best CTC path is then `viterbi_align` over that grid.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align.types import check_aligner_inputs, valid_mask
from jaxalign.align.validate import checked_when_eager
from jaxalign.align.viterbi import viterbi_align


class CtcAlignment(NamedTuple):
    """The best CTC path of each sequence (a pytree).

    tokens:      (B, T) int32 per frame, the label id or `blank_id` the path emits; -1 on padded frames
                 and on infeasible sequences (what torchaudio's `forced_align` returns, batched).
    label_index: (B, T) int32 per frame, the index in `labels` of the label emitted; -1 on blank frames,
                 padding and infeasible sequences.
    score:       (B,) float32 sum of log_probs along the path; -inf where infeasible.
    feasible:    (B,) bool: U_b plus the blanks needed between repeats <= T_b, and T_b >= 1; and no
                 NaN on a valid frame (under `jax.jit`). An empty target (U_b = 0, or labels of shape
                 (B, 0)) is feasible: its only path is all blank.
    """

    tokens: jax.Array
    label_index: jax.Array
    score: jax.Array
    feasible: jax.Array


def ctc_grid(labels, label_paddings, blank_id: int):
    """(B, U) labels -> CTC's grid: (B, 2U+1) rows `blank l_1 blank ... l_U blank`, their paddings
    and optional_rows (every blank, except one between two equal labels)."""
    batch, num_labels = labels.shape
    valid_BxU = valid_mask(label_paddings)
    labels_BxU = labels.astype(jnp.int32)
    rows_BxR = jnp.full((batch, 2 * num_labels + 1), blank_id, jnp.int32).at[:, 1::2].set(labels_BxU)
    num_rows_B = 2 * jnp.sum(valid_BxU, axis=1) + 1
    row_pad_BxR = (jnp.arange(2 * num_labels + 1)[None, :] >= num_rows_B[:, None]).astype(jnp.float32)
    repeat_BxU1 = (labels_BxU[:, 1:] == labels_BxU[:, :-1]) & valid_BxU[:, 1:]  # blank between l_i, l_i+1
    mandatory_BxR = jnp.zeros((batch, 2 * num_labels + 1), bool).at[:, 2:-1:2].set(repeat_BxU1)
    is_blank_BxR = (jnp.arange(2 * num_labels + 1) % 2 == 0)[None, :]
    optional_BxR = (is_blank_BxR & ~mandatory_BxR & (row_pad_BxR == 0)).astype(jnp.float32)
    return rows_BxR, row_pad_BxR, optional_BxR


def label_rows(positions_BxT):
    """Rows of CTC's grid (`ctc_grid`) -> the label each frame belongs to: its own on a label row,
    on a blank the label before it (the first label before any); -1 where positions are -1. So a
    label's segment runs from its first frame to the next label's, as in a forced aligner's output."""
    return jnp.where(positions_BxT >= 0, jnp.maximum((positions_BxT - 1) // 2, 0), -1).astype(jnp.int32)


def check_blank_id(blank_id, num_classes: int) -> None:
    """Trace-time check (blank_id is static): the blank must be one of the C classes; -1 is the
    padding value of `tokens`, so it cannot be the blank."""
    if not isinstance(blank_id, (int, np.integer)) or isinstance(blank_id, bool):
        raise TypeError(f"blank_id must be an int, got {type(blank_id).__name__}")
    if not 0 <= blank_id < num_classes:
        hint = " (-1 is the padding value of tokens)" if blank_id == -1 else ""
        raise ValueError(f"blank_id={blank_id} is not one of the {num_classes} classes of log_probs{hint}")


def _check_no_blank_in_targets(*, labels, label_paddings, blank_id, **_) -> None:
    """Eager check: no valid label is the blank (torchaudio's `forced_align` refuses it too)."""
    label_len = np.sum(np.asarray(label_paddings) == 0, axis=1)
    labels = np.asarray(labels)
    bad_BxU = (np.arange(labels.shape[1])[None, :] < label_len[:, None]) & (labels == blank_id)
    bad_B = np.flatnonzero(bad_BxU.any(axis=1))
    if bad_B.size:
        b = int(bad_B[0])
        u = int(np.flatnonzero(bad_BxU[b])[0])
        raise ValueError(f"labels: example {b} row {u} is the blank ({blank_id}); CTC targets hold labels only")


@checked_when_eager(also=_check_no_blank_in_targets)
@functools.partial(jax.jit, static_argnames=("blank_id",))
def ctc_forced_align(log_probs, logit_paddings, labels, label_paddings, *, blank_id: int = 0) -> CtcAlignment:
    """The best path of each sequence through CTC's topology (`ctc_grid`).

    Args:
      log_probs: (B, T, C) per-frame log-probabilities, the blank among the C classes.
      logit_paddings: (B, T), 1 = padded frame; labels (B, U) int label ids (not the blank);
      label_paddings: (B, U), 1 = padded; as in `viterbi_align`, and checked as there when called
      outside `jax.jit`.
      blank_id: the blank's class, in [0, C): anything else (-1, the padding value of `tokens`, or
        C and above) raises a ValueError, under `jit` too (it is static).

    Empty shapes are results: an empty batch (B = 0) gives empty outputs; an empty target (U_b = 0)
    the all-blank path (feasible when T_b >= 1, `label_index` all -1); no frames, infeasible.

    Checks: outside `jax.jit` as `viterbi_align` (NaN and +inf log-probs, ids in range, paddings),
    and a label equal to the blank raises a ValueError naming the example and row (as torchaudio
    refuses it). Under `jit` that cannot be checked: a blank inside the targets is aligned as an
    ordinary label, a mandatory row of its own that emits the blank's log-prob (its frames show
    `blank_id` in `tokens` but its index in `label_index`), so the result is a path of a different
    topology than CTC's; check targets before jitting.
    """
    check_aligner_inputs(log_probs, logit_paddings, labels, label_paddings)
    check_blank_id(blank_id, log_probs.shape[2])
    rows_BxR, row_pad_BxR, optional_BxR = ctc_grid(labels, label_paddings, blank_id)
    ali = viterbi_align(log_probs, logit_paddings, rows_BxR, row_pad_BxR, optional_BxR)
    on_label_BxT = (ali.positions >= 0) & (ali.positions % 2 == 1)
    return CtcAlignment(
        tokens=ali.symbols,
        label_index=jnp.where(on_label_BxT, ali.positions // 2, -1).astype(jnp.int32),
        score=ali.score,
        feasible=ali.feasible,
    )
