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


@pytest.mark.slow
def test_long_viterbi_with_a_one_row_optional_silence_equals_the_full_grid():
    """substate_grid's layout (k = 2, the silence one optional row) through the coarse pass and band."""
    from jaxalign.align.grid import substate_grid

    k, silence = 2, 0
    rng = np.random.default_rng(5)
    symbols = np.concatenate([[silence], *[[*rng.integers(1, 6, 3), silence] for _ in range(30)]]).astype(np.int32)
    grid = substate_grid(jnp.asarray(symbols)[None], jnp.zeros((1, len(symbols))), k, silence)
    ok = np.asarray(grid.paddings[0]) == 0
    rows, optional, label_of = (np.asarray(a[0])[ok] for a in (grid.rows, grid.optional, grid.label_of))
    # frames: each word phone's 2 sub-states in turn; the silences only every other time
    truth = [r for r in range(len(rows)) for _ in range(0 if optional[r] and label_of[r] % 8 == 4 else 5)]
    logits = rng.normal(0, 1.0, (len(truth), 6 * k)).astype(np.float32)
    logits[np.arange(len(truth)), rows[truth]] += 4.0
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    expected, _ = full_optional(log_probs, rows, optional)
    found = long_viterbi(log_probs, rows, symbols, k, label_of_L=label_of, optional_L=optional, width=16, margin=2)
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
