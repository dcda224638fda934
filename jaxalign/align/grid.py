"""The target-ordered grid of a batch with sub-states and optional rows: which head column each
grid row reads, which rows may be skipped, and which target symbol each row belongs to.

With k states per symbol each symbol s owns k ordered rows s*k .. s*k+k-1 of the head (so "3 3"
decodes apart from "3"); an optional symbol (a corpus' pause between words) gets a block of rows
that the path enters whole or skips whole. `viterbi_align` and `forward_score` take the grid as
`Grid.kernel_args()` where each block is one row; `Grid.graph` is the grid as a `Graph` for
`graph_viterbi` and `graph_forward`, with blocks of any length and the choice weighted by the
probability of a pause.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align.graph import Graph
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
    optional:  (B, R) float32, 1 = a row of an optional symbol's block, which the path skips whole;
               or None: none.
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

    def graph(self, pause_probability: float | None = None) -> Graph:
        """The grid as a `Graph` (state r = row r, so paths give rows): every row stays for free and is
        entered from the row above; the row after an optional block also from the row before the
        block (the skip), and a block first or last in the target may be skipped at the start or
        end. Each block costs log p where the path enters it and log(1 - p) where it skips it
        (p = pause_probability, in (0, 1); None: both free). Of two adjacent blocks one at least is
        entered (a skip leaves out one block), as with `viterbi_align`'s optional rows. K = 2 arcs;
        jittable."""
        if self.optional is None:
            raise ValueError("Grid.graph: this grid has no optional rows (substate_grid without optional_symbol)")
        enter, skip = (
            (0.0, 0.0) if pause_probability is None else (np.log(pause_probability), np.log1p(-pause_probability))
        )
        ok_BxR = self.paddings == 0
        optional_BxR = (self.optional > 0) & ok_BxR
        r_R = jnp.arange(self.rows.shape[1], dtype=jnp.int32)
        label_above_BxR = jnp.pad(self.label_of[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
        first_BxR = ok_BxR & (self.label_of != label_above_BxR)  # the first row of its symbol
        block_start_BxR = jax.lax.cummax(jnp.where(first_BxR, r_R[None, :], 0), axis=1)  # first row of r's symbol
        after_block_BxR = ok_BxR & first_BxR & jnp.pad(optional_BxR[:, :-1], ((0, 0), (1, 0)))  # r-1 ends a block
        skip_from_BxR = jnp.pad(block_start_BxR[:, :-1], ((0, 0), (1, 0))) - 1  # the row before r-1's block
        zero, dead = jnp.float32(0.0), jnp.float32(-jnp.inf)
        arcs = jnp.stack(
            [
                jnp.where(ok_BxR & (r_R >= 1), r_R - 1, -1),
                jnp.where(after_block_BxR & (skip_from_BxR >= 0), skip_from_BxR, -1),
            ],
            axis=2,
        )
        enters_BxR = optional_BxR & first_BxR  # the arc into a block's first row enters it
        enter_BxR = jnp.where(enters_BxR, enter, zero)
        arc_weights = jnp.stack([enter_BxR, skip + enter_BxR], axis=2)  # a skip may land on a next block's first row
        start = jnp.where(ok_BxR & (r_R == 0), enter_BxR, dead)
        start = jnp.where(after_block_BxR & (skip_from_BxR == -1), skip + enter_BxR, start)  # past a first block
        last_B = jnp.sum(ok_BxR, axis=1) - 1
        last_row_optional_B = jnp.take_along_axis(optional_BxR, jnp.maximum(last_B, 0)[:, None], axis=1)[:, 0]
        last_start_B = jnp.take_along_axis(block_start_BxR, jnp.maximum(last_B, 0)[:, None], axis=1)[:, 0]
        final = jnp.where(ok_BxR & (r_R == last_B[:, None]), zero, dead)
        before_last_block = last_row_optional_B[:, None] & (r_R == last_start_B[:, None] - 1)
        final = jnp.where(before_last_block, skip, final)  # before a last block
        return Graph(
            emissions=jnp.where(ok_BxR, self.rows, -1).astype(jnp.int32),
            arcs=arcs.astype(jnp.int32),
            arc_weights=arc_weights.astype(jnp.float32),
            stay_weights=jnp.where(ok_BxR, zero, dead),
            start=start.astype(jnp.float32),
            final=final.astype(jnp.float32),
        )

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


def substate_grid(
    labels_BxL,
    label_paddings_BxL,
    k: int,
    optional_symbol: int | None = None,
    pause_states: int = 1,
    pause_columns: int | None = None,
) -> Grid:
    """Each symbol s becomes k ordered rows s*k .. s*k+k-1, except `optional_symbol` (e.g. a pause
    between words), which gets a block of `pause_states` = m rows that the path skips whole or
    enters whole (a pause then lasts at least m frames); block row j reads the symbol's sub-state
    column s*k + j*k // m (m = k: one each; m = 1: the first). `pause_columns` = n (None: m) reads
    them as a block of n rows would, row j the column of row j*n // m of that block: a net trained
    on blocks of n rows aligned with blocks of m, each row reading a column it was trained on (n = 1:
    every row the first). Without an optional symbol the rows are `substate_labels`'. R = L * max(k, m)."""
    b, num_labels = labels_BxL.shape
    if optional_symbol is None:
        rows, pad = substate_labels(labels_BxL, label_paddings_BxL, k)
        label_of = jnp.where(pad > 0, -1, jnp.arange(num_labels * k)[None, :] // k).astype(jnp.int32)
        return Grid(jnp.where(pad > 0, -1, rows).astype(jnp.int32), pad, None, label_of)
    valid_BxL = valid_mask(label_paddings_BxL)
    single_BxL = labels_BxL == optional_symbol
    counts_BxL = jnp.where(valid_BxL, jnp.where(single_BxL, pause_states, k), 0)
    ends_BxL = jnp.cumsum(counts_BxL, axis=1)
    r_R = jnp.arange(num_labels * max(k, pause_states))
    label_BxR = jax.vmap(lambda ends: jnp.searchsorted(ends, r_R, side="right"))(ends_BxL)
    ok_BxR = r_R[None, :] < ends_BxL[:, -1:]
    label_BxR = jnp.minimum(label_BxR, num_labels - 1)
    start_BxR = jnp.take_along_axis(ends_BxL - counts_BxL, label_BxR, axis=1)
    symbol_BxR = jnp.take_along_axis(labels_BxL, label_BxR, axis=1)
    optional_BxR = symbol_BxR == optional_symbol
    within_BxR = r_R[None, :] - start_BxR
    n = pause_states if pause_columns is None else pause_columns
    within_BxR = jnp.where(optional_BxR, (within_BxR * n // pause_states) * k // n, within_BxR)
    rows = jnp.where(ok_BxR, symbol_BxR * k + within_BxR, -1).astype(jnp.int32)
    optional = (ok_BxR & optional_BxR).astype(jnp.float32)
    return Grid(rows, (~ok_BxR).astype(jnp.float32), optional, jnp.where(ok_BxR, label_BxR, -1).astype(jnp.int32))


def target_grid(
    symbols_L,
    k: int,
    optional_symbol: int | None = None,
    width: int | None = None,
    pause_states: int = 1,
    pause_columns: int | None = None,
):
    """One target's `substate_grid` as NumPy arrays without padding: (rows (R,) class of each grid
    row, label_of (R,) its index in `symbols_L`, optional (R,) float 1 on a row of a skippable
    block, or None without an optional symbol). `width` (>= L) pads the target before building, so
    that targets of many lengths share a few compiled shapes."""
    symbols_L = np.asarray(symbols_L, np.int32)
    width = len(symbols_L) if width is None else width
    labels = np.zeros((1, width), np.int32)
    labels[0, : len(symbols_L)] = symbols_L
    paddings = (np.arange(width) >= len(symbols_L)).astype(np.float32)[None]
    grid = substate_grid(labels, paddings, k, optional_symbol, pause_states, pause_columns)
    used = np.asarray(grid.paddings[0]) == 0
    optional = None if grid.optional is None else np.asarray(grid.optional[0])[used]
    return np.asarray(grid.rows[0])[used], np.asarray(grid.label_of[0])[used], optional
