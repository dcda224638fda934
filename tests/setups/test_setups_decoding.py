"""Divergences, decoders and metrics against references."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxalign.align.grid import substate_labels
from jaxalign.decoding import ctc_prefix_beam_search, edit_distance, label_error_rate, substate_greedy_decode
from jaxalign.decoding.metrics import AlignmentScores, boundary_error
from jaxalign.setups import frame_cross_entropy, many_to_one_weights


@pytest.mark.parametrize("scheme", ["last", "uniform", "linear", "exponential"])
def test_many_to_one_weights_sum_to_one_on_valid_frames(scheme):
    pad = jnp.array([[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 1, 1]], jnp.float32)
    w = np.asarray(many_to_one_weights(pad, scheme, decay=0.2))
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(w[np.asarray(pad) > 0] == 0)
    if scheme == "last":
        np.testing.assert_array_equal(w[0], [0, 0, 0, 1, 0, 0])
    if scheme in ("linear", "exponential"):
        assert np.all(np.diff(w[1]) > 0)  # weight grows towards the end
    if scheme == "uniform":
        np.testing.assert_allclose(w[0, :4], 0.25)


def test_frame_cross_entropy_matches_manual_sum():
    rng = np.random.default_rng(0)
    log_probs = jax.nn.log_softmax(jnp.asarray(rng.normal(size=(2, 4, 3)), jnp.float32))
    targets = jnp.array([[0, 2, -1, 1], [1, 1, 1, -1]])
    weights = jnp.array([[1.0, 0.5, 1.0, 0.0], [1.0, 1.0, 2.0, 1.0]])
    total, count = frame_cross_entropy(log_probs, targets, weights)
    lp = np.asarray(log_probs)
    want = -(lp[0, 0, 0] + 0.5 * lp[0, 1, 2] + lp[1, 0, 1] + lp[1, 1, 1] + 2 * lp[1, 2, 1])
    np.testing.assert_allclose(total, want, rtol=1e-6)
    assert float(count) == 5.5


def test_substate_labels_expand_each_symbol_into_ordered_rows():
    labels, pad = substate_labels(jnp.array([[3, 1, -1]]), jnp.array([[0, 0, 1.0]]), 2)
    np.testing.assert_array_equal(labels, [[6, 7, 2, 3, -1, -1]])
    np.testing.assert_array_equal(pad, [[0, 0, 0, 0, 1, 1]])


def one_hot_log_probs(states, num_classes):
    lp = np.full((1, len(states), num_classes), np.log(0.01), np.float32)
    lp[0, np.arange(len(states)), states] = np.log(0.9)
    return lp


def decoded(labels, pad):
    return np.asarray(labels)[0][np.asarray(pad)[0] == 0].tolist()


def test_substate_greedy_tells_repeats_apart_and_plain_greedy_cannot():
    # symbol 3 twice with k=2 sub-states: rows 6 7 6 7 -> "3 3"
    lp = one_hot_log_probs([6, 6, 7, 6, 7, 7], 10)
    pad = np.zeros((1, 6), np.float32)
    assert decoded(*substate_greedy_decode(lp, pad, k=2)) == [3, 3]
    # with k=1 the same symbol sequence "3 3" is frames 3 3 3 3: merged into one
    lp1 = one_hot_log_probs([3, 3, 3, 3, 3, 3], 10)
    assert decoded(*substate_greedy_decode(lp1, pad, k=1)) == [3]


def ctc_brute_force_best(log_probs_TxC, blank):
    """Most probable labelling by summing over every frame path (tiny T, C only)."""
    totals = {}
    for path in itertools.product(range(log_probs_TxC.shape[1]), repeat=log_probs_TxC.shape[0]):
        merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        labelling = tuple(c for c in merged if c != blank)
        p = np.exp(sum(log_probs_TxC[t, c] for t, c in enumerate(path)))
        totals[labelling] = totals.get(labelling, 0.0) + p
    return list(max(totals, key=totals.get))


@pytest.mark.parametrize("seed", range(8))
def test_ctc_prefix_beam_search_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    lp = np.asarray(jax.nn.log_softmax(rng.normal(size=(5, 3)) * 1.5))
    assert ctc_prefix_beam_search(lp, blank_id=0, beam_width=64) == ctc_brute_force_best(lp, 0)


def reference_edit_distance(a, b):
    if not a or not b:
        return len(a) + len(b)
    return min(
        reference_edit_distance(a[1:], b) + 1,
        reference_edit_distance(a, b[1:]) + 1,
        reference_edit_distance(a[1:], b[1:]) + (a[0] != b[0]),
    )


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=6), st.lists(st.integers(0, 3), max_size=6))
def test_edit_distance_matches_recursive_reference(a, b):
    assert edit_distance(a, b) == reference_edit_distance(a, b)


def test_label_error_rate_and_alignment_scores():
    assert label_error_rate([[1, 2], [3]], [[1, 2, 2], [4]]) == pytest.approx(2 / 4)
    assert boundary_error(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 2, 2])) == pytest.approx(1.0)
    scores = AlignmentScores()
    scores.add(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert scores.result() == {
        "alignment_accuracy": 0.75,
        "boundary_error": 1.0,
        "boundary_shift": 1.0,
        "boundaries_within_2": 1.0,
    }
    scores.add(np.array([0, 1, 1, 2, 2, 2]), np.array([0, 0, 1, 1, 2, 2]))  # both boundaries 1 frame early
    scores.add(np.array([0, 0, 0, 0, 1]), np.array([0, 1, 1, 1, 1]))  # 3 frames late
    scores.add(np.array([0, 0, 0]), np.array([0, 1, 1]))  # enters other rows: no boundary comparison
    result = scores.result()
    assert result["boundary_error"] == pytest.approx((1 + 1 + 1 + 3) / 4)
    assert result["boundary_shift"] == pytest.approx((1 - 1 - 1 + 3) / 4)
    assert result["boundaries_within_2"] == pytest.approx(3 / 4)
    assert result["alignment_accuracy"] == pytest.approx((3 + 4 + 2 + 1) / (4 + 6 + 5 + 3))


def brute_substate_decode(lp_TxS, k):
    """Enumerates every state path obeying the sub-state topology; returns the best one's symbols."""
    num_frames, num_states = lp_TxS.shape
    best, best_labels = -np.inf, None
    for path in itertools.product(range(num_states), repeat=num_frames):
        if path[0] % k != 0 or path[-1] % k != k - 1:
            continue
        labels, ok = [path[0] // k], True
        for a, b in zip(path, path[1:]):
            if b == a:
                continue
            if b == a + 1 and b % k != 0:
                continue
            if a % k == k - 1 and b % k == 0:
                labels.append(b // k)
                continue
            ok = False
            break
        if ok:
            score = sum(lp_TxS[t, s] for t, s in enumerate(path))
            if score > best:
                best, best_labels = score, labels
    return best_labels


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 2])
def test_substate_viterbi_decode_matches_brute_force(seed, k):
    from jaxalign.decoding import substate_viterbi_decode

    rng = np.random.default_rng(seed)
    num_symbols, frames = 2, 6
    lp = np.asarray(jax.nn.log_softmax(rng.normal(size=(3, frames, num_symbols * k + 1)) * 2))  # + a blank column
    pad = np.zeros((3, frames), np.float32)
    pad[1, 4:] = 1  # a shorter sequence
    labels, label_pad = substate_viterbi_decode(lp, pad, k=k, num_symbols=num_symbols)
    for b in range(3):
        n = int((pad[b] == 0).sum())
        got = np.asarray(labels)[b][np.asarray(label_pad)[b] == 0].tolist()
        assert got == brute_substate_decode(lp[b, :n, : num_symbols * k], k)
    if k == 1:  # plain greedy: argmax per frame, repeats merged
        greedy = substate_greedy_decode(lp[..., :num_symbols], pad, k=1)
        np.testing.assert_array_equal(labels, greedy[0])
