"""The target-ordered grid of a batch with sub-states and optional rows: which head column each
grid row reads, which rows may be skipped, and which target symbol each row belongs to.

With k states per symbol each symbol s owns k ordered rows s*k .. s*k+k-1 of the head (so "3 3"
decodes apart from "3"); an optional symbol (a corpus' pause between words) gets one row that the
path may skip. `viterbi_align` and `forward_score` take the grid as `Grid.kernel_args()`.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align.types import valid_mask


def substate_labels(labels_BxL, label_paddings_BxL, k: int):
    """Each symbol s becomes k ordered rows s*k, ..., s*k+k-1: (B, L*k) labels and paddings."""
    if k == 1:
        return labels_BxL, label_paddings_BxL
    b, l = labels_BxL.shape
    rows_BxLxK = labels_BxL[:, :, None] * k + jnp.arange(k)[None, None, :]
    pad_BxLxK = jnp.broadcast_to(label_paddings_BxL[:, :, None], (b, l, k))
    rows_BxLxK = jnp.where(pad_BxLxK > 0, -1, rows_BxLxK)
    return rows_BxLxK.reshape(b, l * k), pad_BxLxK.reshape(b, l * k)


class Grid(NamedTuple):
    """order_sync's target-ordered grid of a batch: R = L * k rows (fewer used where a symbol has one).

    rows:      (B, R) int32 head column of each row (symbol s, sub-state j: s * k + j); -1 on padding.
    paddings:  (B, R) float32, 1 = padded row.
    optional:  (B, R) float32, 1 = a row the path may skip (the optional symbol's), or None: none.
    label_of:  (B, R) int32 index in the target of the symbol each row belongs to (-1 on padding).
    """

    rows: jax.Array
    paddings: jax.Array
    optional: jax.Array | None
    label_of: jax.Array

    def kernel_args(self) -> tuple:
        """(rows, paddings[, optional]): the grid as `viterbi_align` and `forward_score` take it (the
        optional rows only where there are some, so kernels without them still fit the plain grid)."""
        return (self.rows, self.paddings) if self.optional is None else (self.rows, self.paddings, self.optional)

    def labels_of(self, positions_BxT):
        """Grid rows (B, T) -> the index in the target of each frame's symbol; -1 stays -1."""
        return _at_rows(self.label_of, positions_BxT)

    def columns_of(self, positions_BxT):
        """Grid rows (B, T) -> the head column (frame target) of each frame's row; -1 stays -1."""
        return _at_rows(self.rows, positions_BxT)


def _at_rows(table_BxR, positions_BxT):
    """table[b, positions[b, t]] (B, T), -1 where the position is -1."""
    found_BxT = jnp.take_along_axis(table_BxR, jnp.maximum(positions_BxT, 0), axis=1)
    return jnp.where(positions_BxT >= 0, found_BxT, -1)


def substate_grid(labels_BxL, label_paddings_BxL, k: int, optional_symbol: int | None = None) -> Grid:
    """Each symbol s becomes k ordered rows s*k .. s*k+k-1, except `optional_symbol` (e.g. a pause
    between words), which gets ONE row that the path may skip: with k > 1 a skipped pause is
    skipped whole, never entered half-way. Without an optional symbol the rows are `substate_labels`'."""
    b, num_labels = labels_BxL.shape
    if optional_symbol is None:
        rows, pad = substate_labels(labels_BxL, label_paddings_BxL, k)
        label_of = jnp.where(pad > 0, -1, jnp.arange(num_labels * k)[None, :] // k).astype(jnp.int32)
        return Grid(jnp.where(pad > 0, -1, rows).astype(jnp.int32), pad, None, label_of)
    valid_BxL = valid_mask(label_paddings_BxL)
    single_BxL = labels_BxL == optional_symbol
    counts_BxL = jnp.where(valid_BxL, jnp.where(single_BxL, 1, k), 0)
    ends_BxL = jnp.cumsum(counts_BxL, axis=1)
    r_R = jnp.arange(num_labels * k)
    label_BxR = jax.vmap(lambda ends: jnp.searchsorted(ends, r_R, side="right"))(ends_BxL)
    ok_BxR = r_R[None, :] < ends_BxL[:, -1:]
    label_BxR = jnp.minimum(label_BxR, num_labels - 1)
    start_BxR = jnp.take_along_axis(ends_BxL - counts_BxL, label_BxR, axis=1)
    symbol_BxR = jnp.take_along_axis(labels_BxL, label_BxR, axis=1)
    rows = jnp.where(ok_BxR, symbol_BxR * k + r_R[None, :] - start_BxR, -1).astype(jnp.int32)
    optional = (ok_BxR & (symbol_BxR == optional_symbol)).astype(jnp.float32)
    return Grid(rows, (~ok_BxR).astype(jnp.float32), optional, jnp.where(ok_BxR, label_BxR, -1).astype(jnp.int32))


def target_grid(symbols_L, k: int, optional_symbol: int | None = None, width: int | None = None):
    """One target's `substate_grid` as NumPy arrays without padding: (rows (R,) class of each grid
    row, label_of (R,) its index in `symbols_L`, optional (R,) float 1 on a skippable row, or None
    without an optional symbol). `width` (>= L) pads the target before building, so that targets of
    many lengths share a few compiled shapes."""
    symbols_L = np.asarray(symbols_L, np.int32)
    width = len(symbols_L) if width is None else width
    labels = np.zeros((1, width), np.int32)
    labels[0, : len(symbols_L)] = symbols_L
    paddings = (np.arange(width) >= len(symbols_L)).astype(np.float32)[None]
    grid = substate_grid(labels, paddings, k, optional_symbol)
    used = np.asarray(grid.paddings[0]) == 0
    optional = None if grid.optional is None else np.asarray(grid.optional[0])[used]
    return np.asarray(grid.rows[0])[used], np.asarray(grid.label_of[0])[used], optional
