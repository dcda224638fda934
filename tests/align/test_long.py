"""Long recordings: the banded Viterbi against the full grid's, the band's edge check, and the
chunked net against one pass."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxalign import viterbi_align
from jaxalign.align.long import band_starts, banded_viterbi, long_viterbi


def peaked(seed, frames, rows, classes, noise=1.0):
    """Log-probs whose best path follows a random true segmentation of `rows` labels, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=rows).astype(np.int32)
    cuts = np.sort(rng.choice(np.arange(1, frames), size=rows - 1, replace=False))
    truth = np.searchsorted(cuts, np.arange(frames), side="right")
    logits = noise * rng.normal(size=(frames, classes)) + 4.0 * np.eye(classes)[labels[truth]]
    return np.asarray(jax.nn.log_softmax(logits, axis=-1), np.float32), labels, truth


def full(log_probs, labels):
    ali = viterbi_align(log_probs[None], np.zeros((1, len(log_probs))), labels[None], np.zeros((1, len(labels))))
    return np.asarray(ali.positions[0]), float(ali.score[0])


@pytest.mark.parametrize("seed", range(3))
def test_a_band_as_wide_as_the_grid_is_the_full_viterbi(seed):
    log_probs, labels, _ = peaked(seed, 300, 40, 6, noise=3.0)
    positions, score = banded_viterbi(jnp.asarray(log_probs), jnp.asarray(labels), jnp.zeros(300, jnp.int32), width=40)
    expected, expected_score = full(log_probs, labels)
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_allclose(score, expected_score, rtol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_a_band_around_the_true_path_finds_the_full_grid_s_path(seed):
    log_probs, labels, truth = peaked(seed, 2000, 200, 8, noise=1.0)
    expected, expected_score = full(log_probs, labels)
    starts = band_starts(truth, 200, 64)
    assert starts[0] == 0 and starts[-1] == 200 - 64 and np.all(np.diff(starts) >= 0)
    positions, score = banded_viterbi(jnp.asarray(log_probs), jnp.asarray(labels), jnp.asarray(starts), width=64)
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_allclose(score, expected_score, rtol=1e-5)


@pytest.mark.parametrize("k", [1, 3])
def test_long_viterbi_equals_the_full_grid_and_widens_a_band_that_cut_the_path(k):
    log_probs, symbols, _ = peaked(0, 3000, 100, 8, noise=1.5)
    # k sub-state rows per symbol: the classes are (symbol, sub-state) pairs, each sub-state as likely.
    sub_lp = np.repeat(log_probs, k, axis=1) - np.log(k)
    rows = (symbols[:, None] * k + np.arange(k)).reshape(-1).astype(np.int32)
    expected, _ = full(sub_lp, rows)
    found = long_viterbi(sub_lp, rows, symbols, k, width=8 * k, margin=2)
    np.testing.assert_array_equal(found.positions, expected)
    assert found.width >= 8 * k and not found.touched_edge
    capped = long_viterbi(sub_lp, rows, symbols, k, width=4, max_width=4, margin=2)  # too narrow, not allowed to widen
    assert capped.width == 4 and (capped.touched_edge or np.array_equal(capped.positions, expected))


def full_optional(log_probs, labels, optional):
    ali = viterbi_align(
        log_probs[None], np.zeros((1, len(log_probs))), labels[None], np.zeros((1, len(labels))), optional[None]
    )
    return np.asarray(ali.positions[0]), float(ali.score[0])


@pytest.mark.parametrize("seed", range(4))
def test_banded_viterbi_with_optional_rows_is_the_full_viterbi_with_them(seed):
    """Optional rows (skippable, also first and last): a full-width band, and a band around the
    path, give viterbi_align's path and score with the same optional rows."""
    log_probs, labels, _ = peaked(seed, 400, 60, 6, noise=3.0)
    optional = (np.random.default_rng(seed).random(60) < 0.4).astype(np.float32)
    optional[0], optional[-1] = seed % 2, (seed // 2) % 2
    expected, expected_score = full_optional(log_probs, labels, optional)
    positions, score = banded_viterbi(
        jnp.asarray(log_probs), jnp.asarray(labels), jnp.zeros(400, jnp.int32), jnp.asarray(optional), width=60
    )
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_allclose(score, expected_score, rtol=1e-5)
    starts = band_starts(expected, 60, 24)
    positions, _ = banded_viterbi(
        jnp.asarray(log_probs), jnp.asarray(labels), jnp.asarray(starts), jnp.asarray(optional), width=24
    )
    np.testing.assert_array_equal(positions, expected)


def silence_case(k, m, seed=5, words=30):
    """substate_grid's layout of `sil w w w sil ...` (the silence a block of m rows), as NumPy rows,
    optional flags and label_of, and (T, 6k) log-probs whose frames follow it, five a row, the
    silences spoken only every other time."""
    from jaxalign.align.grid import substate_grid

    silence = 0
    rng = np.random.default_rng(seed)
    symbols = np.concatenate([[silence], *[[*rng.integers(1, 6, 3), silence] for _ in range(words)]]).astype(np.int32)
    grid = substate_grid(jnp.asarray(symbols)[None], jnp.zeros((1, len(symbols))), k, silence, m)
    ok = np.asarray(grid.paddings[0]) == 0
    rows, optional, label_of = (np.asarray(a[0])[ok] for a in (grid.rows, grid.optional, grid.label_of))
    truth = [r for r in range(len(rows)) for _ in range(0 if optional[r] and label_of[r] % 8 == 4 else 5)]
    logits = rng.normal(0, 1.0, (len(truth), 6 * k)).astype(np.float32)
    logits[np.arange(len(truth)), rows[truth]] += 4.0
    return symbols, grid, rows, optional, label_of, np.asarray(jax.nn.log_softmax(logits, axis=-1))


def full_graph(log_probs, graph):
    from jaxalign.align.graph import graph_viterbi

    found = graph_viterbi(jnp.asarray(log_probs)[None], jnp.zeros((1, len(log_probs))), graph)
    return np.asarray(found.states[0]), float(found.score[0])


@pytest.mark.parametrize("m, p", [(3, 0.3)])
def test_banded_graph_viterbi_is_graph_viterbi_in_a_full_band_and_one_around_the_path(m, p):
    """A pause-block graph (`Grid.graph`, weighted): a full-width band, and a band around the
    path, give graph_viterbi's path and score (weights included)."""
    from jaxalign.align.long import banded_graph_viterbi

    _, grid, rows, _, _, log_probs = silence_case(2, m, words=12)
    graph = jax.tree.map(lambda x: x[:, : len(rows)], grid.graph(p))
    expected, expected_score = full_graph(log_probs, graph)
    one = jax.tree.map(lambda x: x[0], graph)
    frames = len(log_probs)
    positions, score = banded_graph_viterbi(jnp.asarray(log_probs), one, jnp.zeros(frames, jnp.int32), width=len(rows))
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_allclose(score, expected_score, rtol=1e-5)
    starts = band_starts(expected, len(rows), 16)
    positions, score = banded_graph_viterbi(jnp.asarray(log_probs), one, jnp.asarray(starts), width=16)
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_allclose(score, expected_score, rtol=1e-5)


def test_a_graph_whose_arc_slot_spans_differ_is_refused_by_the_band():
    """banded_graph_viterbi slices its sources: an arc slot must span the same number of states
    everywhere (here slot 0 spans 1 and 2)."""
    from jaxalign.align.graph import graph_from_arcs
    from jaxalign.align.long import banded_graph_viterbi

    graph = graph_from_arcs([[0, 1, 0, 1]], [[(0, 1), (0, 2), (2, 3)]], start=[[0]], final=[[3]])
    graph = jax.tree.map(lambda x: x[0], graph)
    with pytest.raises(ValueError, match="arc slot 0 spans \\[1, 2\\] states"):
        banded_graph_viterbi(jnp.zeros((6, 2)), graph, jnp.zeros(6, jnp.int32), width=4)


@pytest.mark.slow
@pytest.mark.parametrize("m, p", [(1, None), (2, 0.2)])
def test_long_viterbi_with_an_optional_silence_equals_the_full_graph(m, p):
    """substate_grid's layout (k = 2, the silence a block of m rows weighted by p) through the
    coarse pass and the band: graph_viterbi's path on the whole `Grid.graph`."""
    symbols, grid, rows, optional, label_of, log_probs = silence_case(2, m)
    expected, _ = full_graph(log_probs, jax.tree.map(lambda x: x[:, : len(rows)], grid.graph(p)))
    found = long_viterbi(
        log_probs, rows, symbols, 2, label_of_L=label_of, optional_L=optional, pause_probability=p, width=16, margin=2
    )
    np.testing.assert_array_equal(found.positions, expected)


@pytest.mark.parametrize("value, what", [(np.nan, "a NaN"), (np.inf, "a +inf")])
def test_long_viterbi_names_the_frame_of_the_first_nan(value, what):
    """The frame index in the recording, not in the pooled first pass (frames / pool)."""
    log_probs, symbols, _ = peaked(1, 400, 20, 6)
    log_probs = log_probs.copy()
    log_probs[397, 2] = value
    log_probs[251, 4] = value  # the first
    with pytest.raises(ValueError, match=re.escape(f"log_probs_TxC: frame 251 of 400 has {what} log-probability")):
        long_viterbi(log_probs, symbols, symbols, 1, width=8)
    log_probs[:, :] = np.where(np.isfinite(log_probs) | np.isneginf(log_probs), log_probs, -np.inf)
    long_viterbi(log_probs, symbols, symbols, 1, width=8)  # -inf is a log-probability
