"""`substate_grid` (the target-ordered grid with k sub-states a symbol and a skippable block of
rows for the optional symbol) against a brute-force construction, and `Grid.graph`'s paths and
weights against every path enumerated by brute force."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxalign.align.graph import graph_forward, graph_viterbi
from jaxalign.align.grid import substate_grid
from tests.reference import monotone_paths


def brute_grid(labels, lengths, k, optional, m=1):
    """The grid built row by row: k rows s*k+j per symbol s, m rows s*k + j*k//m for the optional symbol."""
    b, num_labels = labels.shape
    width = num_labels * max(k, m)
    rows = np.full((b, width), -1)
    pads = np.ones((b, width))
    flags = np.zeros((b, width))
    label_of = np.full((b, width), -1)
    for n in range(b):
        r = 0
        for i in range(lengths[n]):
            s = int(labels[n, i])
            for j in range(m if s == optional else k):
                column = s * k + (j * k // m if s == optional else j)
                rows[n, r], pads[n, r], flags[n, r], label_of[n, r] = column, 0, s == optional, i
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


@pytest.mark.parametrize("optional, m", [(None, 1), (0, 1), (3, 1), (0, 2), (3, 3), (0, 4)])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_substate_grid_matches_a_brute_force_construction(k, optional, m):
    rng = np.random.default_rng([k, 9 if optional is None else optional, m])
    # Padding as the batcher writes it (-1); with an optional symbol also any id, the optional one too.
    for fill in (-1,) if optional is None else (-1, None):
        labels, lengths = grid_case(rng, optional, fill)
        pads = (np.arange(labels.shape[1])[None, :] >= lengths[:, None]).astype(np.float32)
        grid = jax.jit(substate_grid, static_argnums=(2, 3, 4))(
            jnp.asarray(labels, jnp.int32), jnp.asarray(pads), k, optional, m
        )
        rows, row_pads, flags, label_of = brute_grid(labels, lengths, k, optional, m)
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


def brute_pause_paths(num_frames, target, k, m, optional, p):
    """Every path of T frames through the grid of `target` (a list of symbols) whose optional symbols'
    blocks are each entered whole or skipped whole (never two adjacent blocks both skipped): a list
    of (grid rows, weight), the weight log p per entered block and log(1 - p) per skipped one (0
    with p None). Grid rows are numbered as `substate_grid` numbers them."""
    sizes = [m if s == optional else k for s in target]
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    blocks = [i for i, s in enumerate(target) if s == optional]
    out = []
    for entered in itertools.product([True, False], repeat=len(blocks)):
        skipped = {i for i, e in zip(blocks, entered) if not e}
        if any(i in skipped and i + 1 in skipped for i in blocks):
            continue
        visited = [first[i] + j for i in range(len(target)) if i not in skipped for j in range(sizes[i])]
        weight = 0.0 if p is None else sum(np.log(p) if e else np.log1p(-p) for e in entered)
        for path in monotone_paths(num_frames, len(visited)):
            out.append(([visited[r] for r in path], weight))
    return out


def pause_case(rng, batch=11, frames=7):
    """Targets over symbols 0 (the pause), 1, 2: random ones and fixed ones (a pause first and last,
    a lone pause, a lone phone, two adjacent pauses, 8 phones: too many for any T <= 7), frame and
    target padding; (B, T, 3k) random log-probs."""
    fixed = [[0, 1, 0], [0], [2], [1, 0, 0, 2], [0, 1, 0, 2, 0, 1, 0], [1, 2] * 4]
    targets = fixed + [list(rng.integers(0, 3, size=rng.integers(1, 5))) for _ in range(batch - len(fixed))]
    frame_lengths = rng.integers(1, frames + 1, size=len(targets))
    frame_lengths[:2] = frames
    return targets, frame_lengths


@pytest.mark.parametrize("k, m", [(1, 1), (1, 3), (2, 1), (2, 3)])
@pytest.mark.parametrize("p", [None, 0.2])
def test_grid_graph_with_pause_blocks_matches_brute_force(k, m, p):
    """graph_viterbi and graph_forward on `Grid.graph` give the best and the summed score over every
    path of `brute_pause_paths`, a best path among its winners, and its occupancy as the gradient;
    infeasible targets (too long for the frames) get -inf."""
    rng = np.random.default_rng([k, m, 0 if p is None else int(p * 10)])
    frames = 7
    targets, frame_lengths = pause_case(rng, frames=frames)
    width = max(len(t) for t in targets) + 1  # one padded symbol at least
    labels = np.full((len(targets), width), -1, np.int32)
    for b, t in enumerate(targets):
        labels[b, : len(t)] = t
    label_pads = (labels < 0).astype(np.float32)
    frame_pads = (np.arange(frames)[None, :] >= frame_lengths[:, None]).astype(np.float32)
    log_probs = np.asarray(jax.nn.log_softmax(rng.normal(0, 2, (len(targets), frames, 3 * k)), axis=-1), np.float32)
    grid = substate_grid(jnp.asarray(np.maximum(labels, 0)), jnp.asarray(label_pads), k, 0, m)
    graph = grid.graph(p)
    found = graph_viterbi(jnp.asarray(log_probs), jnp.asarray(frame_pads), graph)
    grad = jax.grad(lambda lp: graph_forward(lp, jnp.asarray(frame_pads), graph).sum())(jnp.asarray(log_probs))
    scores_B = graph_forward(jnp.asarray(log_probs), jnp.asarray(frame_pads), graph)
    rows_BxR = np.asarray(grid.rows)
    for b, target in enumerate(targets):
        t_b = int(frame_lengths[b])
        paths = brute_pause_paths(t_b, target, k, m, 0, p)
        scores = [w + sum(log_probs[b, t, rows_BxR[b, r]] for t, r in enumerate(path)) for path, w in paths]
        if not paths:
            assert not found.feasible[b] and scores_B[b] == -np.inf, (b, target)
            assert np.all(np.asarray(found.states[b]) == -1) and np.all(np.asarray(grad[b]) == 0)
            continue
        best = max(scores)
        winners = [path for (path, _), s in zip(paths, scores) if abs(s - best) < 1e-4]
        np.testing.assert_allclose(found.score[b], best, rtol=1e-5, err_msg=str(target))
        assert np.asarray(found.states[b, :t_b]).tolist() in winners, (b, target)
        assert np.all(np.asarray(found.states[b, t_b:]) == -1)
        np.testing.assert_allclose(scores_B[b], np.logaddexp.reduce(scores), rtol=1e-5, err_msg=str(target))
        occupancy = np.zeros((frames, 3 * k))
        for (path, _), s in zip(paths, scores):
            occupancy[np.arange(t_b), rows_BxR[b, path]] += np.exp(s - scores_B[b])
        np.testing.assert_allclose(grad[b], occupancy, atol=2e-5, err_msg=str(target))
    assert not found.feasible[5]  # the fixed target of 8 phones


def test_a_pause_block_shorter_than_its_frames_cannot_be_entered_and_a_long_one_is_whole():
    """m = 3: a 1-frame pause between two phones is not entered (its frame goes to a phone: one
    frame on a wrong class, not the two a 3-frame block would put there); a 4-frame one is entered,
    its three rows on the pause's frames."""
    k, m, sil, a, b = 1, 3, 0, 1, 2

    def sure(classes):
        lp = np.full((len(classes), 3), np.log(0.01), np.float32)
        lp[np.arange(len(classes)), classes] = np.log(0.98)
        return jnp.asarray(lp)[None]

    grid = substate_grid(jnp.asarray([[a, sil, b]]), jnp.zeros((1, 3)), k, sil, m)
    for pause, block in ((1, []), (4, [1, 2, 3, 3])):
        classes = [a] * 3 + [sil] * pause + [b] * 3
        states = graph_viterbi(sure(classes), jnp.zeros((1, len(classes))), grid.graph(0.5)).states[0]
        assert np.asarray(states).tolist() in (
            [0] * (3 + pause - len(block)) + block + [4] * 3,
            [0] * 3 + block + [4] * (3 + pause - len(block)),
        ), pause


@pytest.mark.parametrize(
    "k, m, n, columns",
    [
        (3, 3, None, [0, 1, 2]),
        (3, 3, 1, [0, 0, 0]),
        (3, 2, 1, [0, 0]),
        (3, 6, 3, [0, 0, 1, 1, 2, 2]),
        (2, 4, 2, [0, 0, 1, 1]),
    ],
)
def test_a_pause_block_reads_the_columns_its_training_block_learnt(k, m, n, columns):
    """pause_columns = n: an m-row block reads the sub-state columns of the n-row block the net was
    trained on (row j the column of its row j*n // m); the phones' rows are unchanged."""
    sil, a = 2, 1
    grid = substate_grid(jnp.asarray([[a, sil, a]]), jnp.zeros((1, 3)), k, sil, m, n)
    rows = np.asarray(grid.rows)[0]
    rows = rows[rows >= 0].tolist()
    assert rows == [a * k + j for j in range(k)] + [sil * k + c for c in columns] + [a * k + j for j in range(k)]
    assert np.asarray(grid.optional)[0][k : k + m].tolist() == [1.0] * m
