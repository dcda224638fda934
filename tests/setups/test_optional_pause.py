"""order_sync's optional pause: the Viterbi gives an unspoken pause no frame and a spoken one its
frames (a block of align.pause_states rows, skipped or entered whole), the pause probability tips
the choice, the frames a target needs count the blocks right, and the flat start shares the frames
among the phones and the edge pauses only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxalign import graph_viterbi, uniform_align
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


def order_sync(k, m=1, p=0.5, num_classes=3):
    overrides = {"align.states_per_symbol": k, "align.pause_states": m, "align.pause_probability": p}
    return make_setup(compose_config({"setup": "order_sync", "model": "gru", **overrides}), num_classes, SIL)


def aligned_labels(frames, k, m=1, p=0.5):
    """Index into TARGET of each frame's row: by graph_viterbi on substate_grid's graph, and by
    order_sync's decode (which must agree); also the grid and the rows of the path."""
    lp = frame_log_probs(frames, k)
    labels, pads, frame_pads = jnp.asarray([TARGET]), jnp.zeros((1, len(TARGET))), jnp.zeros(lp.shape[:2])
    grid = substate_grid(labels, pads, k, SIL, m)
    same_as_decode = jax.nn.log_softmax(jnp.asarray(lp), axis=-1)  # decode renormalises: equal ties break alike
    rows = np.asarray(graph_viterbi(same_as_decode, frame_pads, grid.graph(p)).states[0])
    by_grid = np.asarray(grid.label_of[0])[rows]
    decoded = order_sync(k, m, p).decode(
        jnp.asarray(lp), {"labels": labels, "label_paddings": pads, "logit_paddings": frame_pads}
    )
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
def test_a_pause_block_is_entered_whole_or_skipped_whole(k):
    """m = k: the middle pause (4 frames) is entered and walks through all of its k rows, each reading
    its own sub-state column; the other two pauses are skipped whole."""
    frames = spoken(A, k) + [(SIL, j) for j in range(k)] + [(SIL, k - 1)] * (4 - k) + spoken(B, k)
    by_label, rows, grid = aligned_labels(frames, k, m=k)
    assert by_label.tolist() == [1] * 3 * k + [2] * 4 + [3] * 3 * k
    blocks = np.asarray(grid.label_of[0])[np.flatnonzero(np.asarray(grid.optional[0]) > 0)]
    assert blocks.tolist() == [0] * k + [2] * k + [4] * k
    assert np.asarray(grid.rows[0])[rows][by_label == 2].tolist() == [SIL * k + j for j in range(k)] + [
        SIL * k + k - 1
    ] * (4 - k)


def test_a_short_pause_is_left_out_by_a_long_block_and_a_low_probability():
    """k = 1: a 1-frame silence between the words is a pause with one-row blocks and p = 0.5, but
    not with 3-row blocks (two of its frames would be a phone's) nor with p = 0.01 (log 0.01 costs
    more than its one frame gains)."""
    frames = spoken(A, 1, 4) + [(SIL, 0)] + spoken(B, 1, 4)
    assert aligned_labels(frames, 1, m=1, p=0.5)[0].tolist() == [1] * 4 + [2] + [3] * 4
    assert 2 not in aligned_labels(frames, 1, m=3, p=0.5)[0].tolist()
    assert 2 not in aligned_labels(frames, 1, m=1, p=0.01)[0].tolist()


@pytest.mark.parametrize("k, m", [(1, 1), (3, 3), pytest.param(2, 4, marks=pytest.mark.slow)])
def test_the_frames_a_target_needs_leave_skipped_pauses_out(k, m):
    """frames_needed and feasible_targets: k frames a phone, none for a pause (skipped), m for a
    target of one pause alone; the graph's Viterbi agrees on which targets fit."""
    setup = order_sync(k, m)
    targets = [[SIL, A, SIL, B, SIL], [SIL], [A], [SIL, A, A]]
    needed = [2 * k, m, k, 2 * k]
    assert [setup.frames_needed(y) for y in targets] == needed
    for frames in (1, 2 * k - 1, 2 * k, m):
        fits = setup.feasible_targets([frames] * len(targets), targets)
        np.testing.assert_array_equal(fits, [frames >= n for n in needed])
        for y, fit in zip(targets, fits):
            grid = substate_grid(jnp.asarray([y]), jnp.zeros((1, len(y))), k, SIL, m)
            found = graph_viterbi(jnp.zeros((1, frames, 3 * k)), jnp.zeros((1, frames)), grid.graph(0.5))
            assert bool(found.feasible[0]) == fit, (y, frames)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_flat_start_shares_the_frames_among_the_phones_and_the_edge_pauses_only(k):
    """With optional blocks the uniform initial alignment skips the pauses between words: the rows
    of the first and last silence and every phone row get equal shares, in order; without them it
    is uniform_align."""
    setup = order_sync(k, m=k, num_classes=5)
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
        label_of = np.asarray(grid.label_of[b])[:used]
        kept = [r for r in range(used) if not optional[r] or label_of[r] in (0, label_of[-1])]
        expected = np.asarray(
            uniform_align(jnp.zeros((1, frames)), jnp.zeros((1, len(kept)))).positions[0]
        )  # indices into `kept`
        np.testing.assert_array_equal(positions[b, :frames], np.asarray(kept)[expected])
        assert np.all(positions[b, frames:] == -1)
    plain = make_setup(compose_config({"setup": "order_sync", "model": "gru", "align.states_per_symbol": k}), 5)
    expected = uniform_align(batch["logit_paddings"], plain.grid(batch).paddings, plain.grid(batch).rows)
    np.testing.assert_array_equal(plain.flat_start(batch).positions, expected.positions)
