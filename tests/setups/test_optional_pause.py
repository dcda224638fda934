"""order_sync's optional pause: the Viterbi gives an unspoken pause no frame and a spoken one its
frames (one row, skipped or entered whole), and the flat start shares the frames among the phones
and the edge pauses only."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxalign import uniform_align, viterbi_align
from jaxalign.align.grid import substate_grid
from jaxalign.setups import make_setup
from tests.helpers import compose_config

SIL, A, B = 0, 1, 2


TARGET = [SIL, A, SIL, B, SIL]  # sil a sil b sil


def frame_log_probs(frames, k):
    """(1, T, 3k) log-probs that clearly show (symbol, sub-state) on each frame."""
    out = np.full((len(frames), 3 * k), np.log(0.02), np.float32)
    for t, (s, j) in enumerate(frames):
        out[t, s * k + j] = np.log(0.9)
    return (out - np.logaddexp.reduce(out, axis=1, keepdims=True))[None]


def spoken(symbol, k, frames_each=3):
    return [(symbol, j) for j in range(k) for _ in range(frames_each)]


def aligned_labels(frames, k):
    """Index into TARGET of each frame's row: by viterbi_align on substate_grid's rows, and by
    order_sync's decode (which must agree); also the grid and the rows of the path."""
    lp = frame_log_probs(frames, k)
    labels, pads, frame_pads = jnp.asarray([TARGET]), jnp.zeros((1, len(TARGET))), jnp.zeros(lp.shape[:2])
    grid = substate_grid(labels, pads, k, SIL)
    ali = viterbi_align(lp, frame_pads, grid.rows, grid.paddings, grid.optional)
    rows = np.asarray(ali.positions[0])
    by_grid = np.asarray(grid.label_of[0])[rows]
    setup = make_setup(compose_config({"setup": "order_sync", "model": "gru", "align.states_per_symbol": k}), 3, SIL)
    decoded = setup.decode(jnp.asarray(lp), {"labels": labels, "label_paddings": pads, "logit_paddings": frame_pads})
    np.testing.assert_array_equal(np.asarray(decoded["positions"][0]), by_grid)
    return by_grid, rows, grid


@pytest.mark.parametrize("k", [1, 2, 3])
def test_an_unspoken_pause_gets_no_frame_and_a_spoken_one_gets_its_frames(k):
    n = 3 * k
    by_label, rows, grid = aligned_labels(spoken(A, k) + spoken(B, k), k)
    assert by_label.tolist() == [1] * n + [3] * n  # no frame for any of the three silences
    assert not np.asarray(grid.optional[0])[rows].any()

    frames = [(SIL, 0)] * 2 + spoken(A, k) + [(SIL, 0)] * 4 + spoken(B, k) + [(SIL, 0)] * 2
    by_label, rows, grid = aligned_labels(frames, k)
    assert by_label.tolist() == [0] * 2 + [1] * n + [2] * 4 + [3] * n + [4] * 2
    assert np.asarray(grid.rows[0])[rows][by_label == 2].tolist() == [SIL * k] * 4


@pytest.mark.parametrize("k", [2, 3])
def test_with_sub_states_a_pause_is_one_row_skipped_whole_or_entered_whole(k):
    # Only the middle pause is spoken, and its frames look like the silence's LAST sub-state, which
    # has no row: the pause is still entered, on its one row, and the other two are skipped whole.
    frames = spoken(A, k) + [(SIL, k - 1)] * 2 + [(SIL, 0)] * 2 + spoken(B, k)
    by_label, rows, grid = aligned_labels(frames, k)
    assert by_label.tolist() == [1] * 3 * k + [2] * 4 + [3] * 3 * k
    silence_rows = np.flatnonzero(np.asarray(grid.optional[0]) > 0)
    assert len(silence_rows) == 3 and (np.asarray(grid.rows[0])[silence_rows] == SIL * k).all()
    assert set(rows[by_label == 2].tolist()) == {silence_rows[1]}  # one row, all four frames
    assert not set(rows.tolist()) & {silence_rows[0], silence_rows[2]}


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_flat_start_shares_the_frames_among_the_phones_and_the_edge_pauses_only(k):
    """With optional rows the uniform initial alignment skips the pauses between words: the first
    and last silence and every phone row get equal shares, in order; without them it is uniform_align."""
    setup = make_setup(compose_config({"setup": "order_sync", "model": "gru", "align.states_per_symbol": k}), 5, SIL)
    labels = np.array([[SIL, 1, SIL, 2, 3, SIL], [SIL, 4, SIL, -1, -1, -1]], np.int32)
    batch = {
        "labels": jnp.asarray(labels),
        "label_paddings": jnp.asarray((labels < 0).astype(np.float32)),
        "logit_paddings": jnp.zeros((2, 30)).at[1, 24:].set(1.0),
    }
    grid = setup.grid(batch)
    ali = setup.flat_start(batch)
    positions = np.asarray(ali.positions)
    for b, frames in enumerate((30, 24)):
        used = int(np.sum(np.asarray(grid.paddings[b]) == 0))
        optional = np.asarray(grid.optional[b])[:used] > 0
        kept = [r for r in range(used) if not optional[r] or r in (0, used - 1)]
        expected = np.asarray(
            uniform_align(jnp.zeros((1, frames)), jnp.zeros((1, len(kept)))).positions[0]
        )  # indices into `kept`
        np.testing.assert_array_equal(positions[b, :frames], np.asarray(kept)[expected])
        assert np.all(positions[b, frames:] == -1)
    plain = make_setup(compose_config({"setup": "order_sync", "model": "gru", "align.states_per_symbol": k}), 5)
    expected = uniform_align(batch["logit_paddings"], plain.grid(batch).paddings, plain.grid(batch).rows)
    np.testing.assert_array_equal(plain.flat_start(batch).positions, expected.positions)
