"""`substate_grid` (the target-ordered grid with k sub-states a symbol and one skippable row for
the optional symbol) against a brute-force construction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxalign.align.grid import substate_grid


def brute_grid(labels, lengths, k, optional):
    """The grid built row by row: k rows s*k+j per symbol s, one row s*k for the optional symbol."""
    b, num_labels = labels.shape
    rows = np.full((b, num_labels * k), -1)
    pads = np.ones((b, num_labels * k))
    flags = np.zeros((b, num_labels * k))
    label_of = np.full((b, num_labels * k), -1)
    for n in range(b):
        r = 0
        for i in range(lengths[n]):
            s = int(labels[n, i])
            for j in range(1 if s == optional else k):
                rows[n, r], pads[n, r], flags[n, r], label_of[n, r] = s * k + j, 0, s == optional, i
                r += 1
    return rows, pads, (flags if optional is not None else None), label_of


def grid_case(rng, optional, fill=-1):
    """One batch (labels, lengths): random targets, and fixed ones (repeats, all optional symbols
    but one, optional symbols first and last, a fully padded target). Padding holds `fill` (the
    batcher's -1), or random ids where `fill` is None."""
    o = 0 if optional is None else optional
    fixed = [[2, 2, 2, 2, 2], [o, o, 3, o, o, o], [o, 1, o, 1, o, 4], [4, o, o, 1, 1, o], [], [o], [1]]
    lengths = np.concatenate([rng.integers(0, 9, size=17), [len(f) for f in fixed]])
    labels = rng.integers(0, 5, size=(len(lengths), 8))
    for n, f in enumerate(fixed):
        labels[17 + n, : len(f)] = f
    for n, length in enumerate(lengths):
        labels[n, length:] = rng.choice([-1, 0, o], size=8 - length) if fill is None else fill
    return labels, lengths


@pytest.mark.parametrize("optional", [None, 0, 3])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_substate_grid_matches_a_brute_force_construction(k, optional):
    rng = np.random.default_rng([k, 9 if optional is None else optional])
    # Padding as the batcher writes it (-1); with an optional symbol also any id, the optional one too.
    for fill in (-1,) if optional is None else (-1, None):
        labels, lengths = grid_case(rng, optional, fill)
        pads = (np.arange(labels.shape[1])[None, :] >= lengths[:, None]).astype(np.float32)
        grid = jax.jit(substate_grid, static_argnums=(2, 3))(
            jnp.asarray(labels, jnp.int32), jnp.asarray(pads), k, optional
        )
        rows, row_pads, flags, label_of = brute_grid(labels, lengths, k, optional)
        np.testing.assert_array_equal(np.asarray(grid.rows), rows, err_msg=str(labels))
        np.testing.assert_array_equal(np.asarray(grid.paddings), row_pads, err_msg=str(labels))
        np.testing.assert_array_equal(np.asarray(grid.label_of), label_of, err_msg=str(labels))
        if optional is None:
            assert grid.optional is None
        else:
            np.testing.assert_array_equal(np.asarray(grid.optional), flags, err_msg=str(labels))
        assert grid.rows.dtype == jnp.int32 and grid.label_of.dtype == jnp.int32


def test_substate_grid_rows_are_minus_one_on_padding_whatever_the_padded_labels_hold():
    labels, pads = jnp.asarray([[3, 1, 0, 2]]), jnp.asarray([[0.0, 0.0, 1.0, 1.0]])
    for k in (2, 1):
        assert np.asarray(substate_grid(labels, pads, k).rows)[0, 2 * k :].tolist() == [-1] * 2 * k, k
