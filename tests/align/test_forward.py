"""forward_score (full sum over the target-ordered grid) against brute force, with its gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxalign import forward_score, viterbi_align
from jaxalign.align.types import scan_unroll
from tests.align.test_viterbi import EDGE_SHAPES, random_batch
from tests.reference import brute_forward, lengths


def score_and_grad(log_probs, logit_pad, labels, label_pad, **kw):
    """(B,) scores and the (B, T, C) gradient of their sum, as NumPy."""

    def total(x):
        score_B = forward_score(x, logit_pad, labels, label_pad, **kw)
        return score_B.sum(), score_B

    (_, score), grad = jax.value_and_grad(total, has_aux=True)(log_probs)
    return np.asarray(score), np.asarray(grad)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("tie_prone", [False, True])
@pytest.mark.parametrize("shape", EDGE_SHAPES)
def test_score_and_gradient_match_brute_force(seed, tie_prone, shape):
    """Covers L=1, L=T, T=1, L=0 and L>T rows, padded frames, junk in padded labels and repeats, in
    batches of every edge (T, L) shape."""
    batch = random_batch(seed, frames=shape[0], rows=shape[1], tie_prone=tie_prone)
    score, grad = score_and_grad(*batch)
    for b, (total, occupancy) in enumerate(brute_forward(*batch)):
        if total == -np.inf:
            assert score[b] == -np.inf
        else:
            np.testing.assert_allclose(score[b], total, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(grad[b], occupancy, atol=2e-6)


def test_repeated_labels_get_their_own_rows():
    """Target "0 0" over 3 frames: paths 0|0 0 and 0 0|0; frame 1 is on either row, class 0 both."""
    log_probs = np.log(np.array([[[0.5, 0.5], [0.3, 0.7], [0.5, 0.5]]], np.float32))
    score, grad = score_and_grad(log_probs, np.zeros((1, 3)), np.array([[0, 0]], np.int32), np.zeros((1, 2)))
    np.testing.assert_allclose(score, [np.log(2 * 0.5 * 0.3 * 0.5)], rtol=1e-6)
    np.testing.assert_allclose(grad[0], [[1, 0], [1, 0], [1, 0]], atol=1e-6)


def test_gradient_matches_finite_differences():
    log_probs, logit_pad, labels, label_pad = random_batch(4, frames=6, rows=3)
    _, grad = score_and_grad(log_probs, logit_pad, labels, label_pad)

    def feasible_total(x):
        score = np.asarray(forward_score(x, logit_pad, labels, label_pad))
        return float(np.sum(score[np.isfinite(score)]))

    eps = 1e-2  # float32 central differences: rounding ~1e-5, truncation ~eps^2
    numeric = np.zeros_like(log_probs)
    for idx in np.ndindex(*log_probs.shape):
        step = np.zeros_like(log_probs)
        step[idx] = eps
        numeric[idx] = (feasible_total(log_probs + step) - feasible_total(log_probs - step)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=2e-3)


def test_occupancy_sums_to_one_on_valid_frames_of_long_sequences():
    log_probs, logit_pad, labels, label_pad = random_batch(2, batch=8, frames=200, rows=40, classes=7)
    score, grad = score_and_grad(log_probs, logit_pad, labels, label_pad)
    frame_ok = np.arange(200)[None, :] < lengths(logit_pad)[:, None]
    want = np.where(frame_ok & np.isfinite(score)[:, None], 1.0, 0.0)
    np.testing.assert_allclose(grad.sum(axis=2), want, atol=1e-4)
    assert np.all(grad >= 0)


def test_no_nan_on_infeasible_and_hostile_inputs():
    log_probs, logit_pad, labels, label_pad = random_batch(3, frames=8, rows=5)
    log_probs = log_probs.copy()
    log_probs[0] = -np.inf  # feasible but no path of nonzero probability
    log_probs[1, 2, :] = np.nan
    log_probs[4, ::2, 0] = -np.inf
    log_probs[5, :, 1] = np.nan
    score, grad = score_and_grad(log_probs, logit_pad, labels, label_pad)  # traced: a NaN is not refused
    assert not np.isnan(score).any() and not np.isnan(grad).any()
    assert score[0] == -np.inf and score[3] == -np.inf  # all -inf; L > T
    assert np.all(grad[0] == 0) and np.all(grad[3] == 0)
    assert score[1] == -np.inf and score[5] == -np.inf  # a NaN on a valid frame: no score
    assert np.all(grad[1] == 0) and np.all(grad[5] == 0)
    as_neg_inf = np.where(np.isnan(log_probs), -np.inf, log_probs)  # (sequences 1 and 5 left out below)
    for b, (total, occupancy) in enumerate(brute_forward(as_neg_inf, logit_pad, labels, label_pad)):
        if b in (1, 5):
            continue
        np.testing.assert_allclose(score[b], total, rtol=1e-5)
        np.testing.assert_allclose(grad[b], occupancy, atol=2e-6)


def test_empty_target_axis_gives_neg_inf_and_zero_gradient():
    log_probs = np.zeros((2, 4, 3), np.float32)
    score, grad = score_and_grad(log_probs, np.zeros((2, 4)), np.zeros((2, 0), np.int32), np.zeros((2, 0)))
    assert np.all(score == -np.inf) and np.all(grad == 0)


@pytest.mark.parametrize("seed", range(4))
def test_at_least_viterbi_and_equal_when_one_path_dominates(seed):
    batch = random_batch(seed, frames=8, rows=5)
    full = np.asarray(forward_score(*batch))
    best = np.asarray(viterbi_align(*batch).score)
    assert np.all((full >= best - 1e-5) | (best == -np.inf))
    # Plant one path with probability ~1 per frame and distinct labels: every other path pays e^-40.
    _, logit_pad, _, label_pad = batch
    batch_size, num_rows = label_pad.shape
    labels = np.tile(np.arange(num_rows, dtype=np.int32), (batch_size, 1))
    rng = np.random.default_rng(seed)
    planted = np.full((batch_size, 8, num_rows), -40.0, np.float32)
    for b, (t_b, l_b) in enumerate(zip(lengths(logit_pad), lengths(label_pad))):
        if 1 <= l_b <= t_b:
            moves = np.sort(rng.choice(np.arange(1, t_b), size=l_b - 1, replace=False))
            planted[b, np.arange(t_b), np.searchsorted(moves, np.arange(t_b), side="right")] = 0.0
    dominated = (planted, logit_pad, labels, label_pad)
    np.testing.assert_allclose(forward_score(*dominated), viterbi_align(*dominated).score, atol=1e-5)


def test_no_retrace_for_new_data_of_same_shapes():
    forward_score(*random_batch(10))
    size = forward_score._cache_size()
    forward_score(*random_batch(11))
    assert forward_score._cache_size() == size


def test_bfloat16_runs_dp_in_float32():
    log_probs, logit_pad, labels, label_pad = random_batch(5)
    low = jnp.asarray(log_probs, jnp.bfloat16)
    score, grad = score_and_grad(low, logit_pad, labels, label_pad)
    want_score, want_grad = score_and_grad(low.astype(jnp.float32), logit_pad, labels, label_pad)
    assert score.dtype == np.float32 and grad.dtype == jnp.bfloat16
    np.testing.assert_array_equal(score, want_score)
    np.testing.assert_allclose(grad.astype(np.float32), want_grad, atol=1e-2)


@pytest.mark.slow
@pytest.mark.parametrize("unroll", [2, 3, 16, 64])  # 40 frames: a divisor, non-divisors and more than T
def test_unroll_does_not_change_score_or_gradient(unroll):
    batch = random_batch(7, batch=8, frames=40, rows=12)
    base_score, base_grad = score_and_grad(*batch, unroll=1)
    score, grad = score_and_grad(*batch, unroll=unroll)
    np.testing.assert_array_equal(score, base_score)
    # XLA fuses an unrolled body differently (where a multiply-add becomes one FMA): last-bit changes.
    np.testing.assert_allclose(grad, base_grad, rtol=1e-6, atol=1e-7)


def test_default_unroll_is_chosen_by_backend(monkeypatch):
    assert scan_unroll(5) == 5
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert scan_unroll(None) == 1
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert scan_unroll(None) == 16


@pytest.mark.parametrize(
    "change, error, name",
    [
        (lambda a: a.update(log_probs=a["log_probs"][0]), ValueError, "log_probs"),
        (lambda a: a.update(labels=a["labels"].astype(np.float32)), TypeError, "labels"),
        (lambda a: a.update(label_paddings=a["label_paddings"][:, :2]), ValueError, "label_paddings"),
    ],
)
def test_trace_time_errors_name_the_argument(change, error, name):
    log_probs, logit_pad, labels, label_pad = random_batch(0)
    args = dict(log_probs=log_probs, logit_paddings=logit_pad, labels=labels, label_paddings=label_pad)
    change(args)
    with pytest.raises(error, match=name):
        forward_score(**args)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("pattern", ["random", "all", "adjacent", "none"])
def test_forward_score_with_optional_rows_matches_brute_force_value_and_gradient(seed, pattern):
    from tests.align.test_viterbi import optional_batch
    from tests.reference import brute_optional

    batch = optional_batch(seed, pattern)
    log_probs, rest = jnp.asarray(batch[0]), batch[1:]

    def total(lp):
        score_B = jax.jit(forward_score)(lp, *rest)
        return jnp.sum(jnp.where(jnp.isfinite(score_B), score_B, 0.0)), score_B

    (_, score), grad = jax.value_and_grad(total, has_aux=True)(log_probs)
    assert not np.isnan(np.asarray(grad)).any() and not np.isnan(np.asarray(score)).any()
    for b, (_, _, expected, occupancy, _) in enumerate(brute_optional(*batch)):
        np.testing.assert_allclose(score[b], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(grad[b], occupancy, atol=2e-5)
    if pattern == "none":  # no optional row: the plain grid's score
        np.testing.assert_allclose(score, jax.jit(forward_score)(*batch[:4]), rtol=1e-6)
