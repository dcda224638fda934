"""Alignment kernels against brute-force references on small random cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxalign
from jaxalign import compress, expand, greedy_decode, masked_align, uniform_align, viterbi_align
from tests.reference import brute_masked, brute_viterbi, lengths, path_score

# (T, L) array shapes for the brute-force tests: the usual one, one target row (L = 1), as many rows as
# frames (L = T), a single frame and row, and more rows than frames.
EDGE_SHAPES = [(9, 5), (9, 1), (5, 5), (1, 1), (3, 4)]


def random_batch(seed, batch=6, frames=9, rows=5, classes=3, tie_prone=False):
    """Random log-probs and right-padded lengths covering L=1, L=T, T=1, L=0 and L>T rows (those that
    the (T, L) array shape allows), a repeated label in sequence 4, and junk in padded rows."""
    rng = np.random.default_rng(seed)
    if tie_prone:  # few distinct values so equal-scoring paths are common
        logits = rng.integers(0, 3, size=(batch, frames, classes)).astype(np.float32)
    else:
        logits = rng.normal(size=(batch, frames, classes)).astype(np.float32) * 2
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    t_len = rng.integers(1, frames + 1, size=batch)
    l_len = rng.integers(0, rows + 1, size=batch)
    t_len[0], l_len[0] = frames, 1  # L_b = 1
    t_len[1] = l_len[1] = min(rows, frames)  # L_b = T_b
    t_len[2], l_len[2] = 1, 1  # T_b = 1
    t_len[3], l_len[3] = min(2, frames), min(3, rows)  # infeasible where L >= 3: L_b > T_b
    labels = rng.integers(0, classes, size=(batch, rows))
    labels[4, 1:2] = labels[4, 0]  # a repeat (where L >= 2)
    logit_pad = (np.arange(frames)[None] >= t_len[:, None]).astype(np.float32)
    label_pad = (np.arange(rows)[None] >= l_len[:, None]).astype(np.float32)
    labels = np.where(label_pad > 0, rng.integers(-5, 50, size=labels.shape), labels)  # junk in padding
    return log_probs, logit_pad, labels.astype(np.int32), label_pad


def assert_valid_path(positions, t_b, l_b):
    assert positions[0] == 0 and positions[t_b - 1] == l_b - 1
    steps = np.diff(positions[:t_b])
    assert set(steps.tolist()) <= {0, 1}
    assert np.all(positions[t_b:] == -1)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("tie_prone", [False, True])
@pytest.mark.parametrize("shape", EDGE_SHAPES)
def test_viterbi_matches_brute_force(seed, tie_prone, shape):
    frames, rows = shape
    log_probs, logit_pad, labels, label_pad = random_batch(seed, frames=frames, rows=rows, tie_prone=tie_prone)
    ali = jax.tree.map(np.asarray, viterbi_align(log_probs, logit_pad, labels, label_pad))
    for b, (best, winners) in enumerate(brute_viterbi(log_probs, logit_pad, labels, label_pad)):
        t_b, l_b = int(lengths(logit_pad)[b]), int(lengths(label_pad)[b])
        if not winners:
            assert not ali.feasible[b] and ali.score[b] == -np.inf
            assert np.all(ali.positions[b] == -1) and np.all(ali.symbols[b] == -1)
            continue
        assert ali.feasible[b]
        rows = ali.positions[b]
        assert_valid_path(rows, t_b, l_b)
        np.testing.assert_allclose(ali.score[b], best, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(path_score(log_probs[b], labels[b], rows[:t_b]), best, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(ali.symbols[b, :t_b], labels[b][rows[:t_b]])
        if tie_prone:  # documented tie-break: the earliest-moving optimal path
            earliest = max(winners, key=lambda r: tuple(r))
            np.testing.assert_array_equal(rows[:t_b], earliest)


def test_viterbi_ties_move_early_and_all_neg_inf_is_valid():
    flat = np.zeros((1, 6, 2), np.float32)
    labels = np.array([[0, 1, 0]], np.int32)
    no_pad = np.zeros((1, 6), np.float32)
    ali = viterbi_align(flat, no_pad, labels, np.zeros((1, 3), np.float32))
    np.testing.assert_array_equal(ali.positions[0], [0, 1, 2, 2, 2, 2])
    dead = np.full((1, 6, 2), -np.inf, np.float32)
    ali = viterbi_align(dead, no_pad, labels, np.zeros((1, 3), np.float32))
    assert ali.feasible[0] and ali.score[0] == -np.inf
    assert_valid_path(np.asarray(ali.positions[0]), 6, 3)


@pytest.mark.parametrize("aligner", [viterbi_align, masked_align])
def test_no_nan_on_hostile_inputs(aligner):
    """Under jit (where a NaN cannot be refused): -inf log-probs, and a NaN that makes its sequence infeasible."""
    log_probs, logit_pad, labels, label_pad = random_batch(3)
    log_probs = log_probs.copy()
    log_probs[0, :, :] = -np.inf
    log_probs[1, 2, :] = np.nan
    log_probs[4, ::2, 0] = -np.inf
    ali = jax.jit(aligner)(log_probs, logit_pad, labels, label_pad)
    for leaf in jax.tree.leaves(ali):
        assert not np.any(np.isnan(np.asarray(leaf, dtype=np.float32)))
    assert not ali.feasible[1] and np.all(np.asarray(ali.positions[1]) == -1)


NAN_FUNCTIONS = {
    "viterbi_align": lambda *a: viterbi_align(*a),
    "viterbi_align optional rows": lambda *a: viterbi_align(*a, jnp.ones(a[2].shape)),
    "viterbi_align packed": lambda *a: viterbi_align(*a, packed=True),
    "masked_align": lambda *a: masked_align(*a),
    "viterbi_align_pallas": lambda *a: jaxalign.viterbi_align_pallas(*a),
    "forward_score": lambda *a: jaxalign.forward_score(*a),
    "forward_score optional rows": lambda *a: jaxalign.forward_score(*a, jnp.ones(a[2].shape)),
    "forward_score_pallas": lambda *a: jaxalign.forward_score_pallas(*a),
    "ctc_forced_align": lambda *a: jaxalign.ctc_forced_align(*a, blank_id=2),
}


@pytest.mark.parametrize("name", NAN_FUNCTIONS)
def test_a_nan_log_prob_is_refused_outside_jit_and_makes_its_sequence_infeasible_under_it(name):
    """NaN on a valid frame: a ValueError naming the example and frame when called eagerly; under jit the
    sequence is infeasible (no path, score -inf, no gradient), the others untouched; NaN on a padded frame
    changes nothing."""
    fn = NAN_FUNCTIONS[name]
    log_probs, logit_pad, labels, label_pad = random_batch(2)
    labels = np.where(label_pad > 0, -1, np.arange(labels.shape[1]) % 2).astype(np.int32)  # 0 1 0 1 0; blank 2
    clean = jax.tree.map(np.asarray, jax.jit(fn)(log_probs, logit_pad, labels, label_pad))
    feasible = np.asarray(clean.feasible) if hasattr(clean, "feasible") else np.isfinite(clean)
    assert feasible[0] and feasible[1], "the sequences that get a NaN have a path without it"
    poisoned = log_probs.copy()
    poisoned[1, 3, 2] = np.nan  # a valid frame of sequence 1 (T_1 = 5), a class not among its labels
    poisoned[0, 0, 0] = np.nan  # and of sequence 0
    poisoned[2, 1:, :] = np.nan  # padded frames of sequence 2 (T_2 = 1)
    with pytest.raises(ValueError, match="log_probs: example 0 frame 0 has a NaN log-probability"):
        fn(poisoned, logit_pad, labels, label_pad)
    got = jax.tree.map(np.asarray, jax.jit(fn)(poisoned, logit_pad, labels, label_pad))
    if hasattr(got, "feasible"):
        assert not got.feasible[0] and not got.feasible[1]
        assert np.all(got.score[:2] == -np.inf)
        for field in ("positions", "symbols", "tokens", "label_index"):
            if hasattr(got, field):
                assert np.all(getattr(got, field)[:2] == -1)
                np.testing.assert_array_equal(getattr(got, field)[2:], getattr(clean, field)[2:])
        np.testing.assert_array_equal(got.feasible[2:], clean.feasible[2:])
        np.testing.assert_array_equal(got.score[2:], clean.score[2:])
    else:
        assert np.all(got[:2] == -np.inf)
        np.testing.assert_array_equal(got[2:], clean[2:])
        total = lambda x: jnp.sum(jnp.where(jnp.isfinite(s := fn(x, logit_pad, labels, label_pad)), s, 0.0))  # noqa: E731
        grad = np.asarray(jax.jit(jax.grad(total))(poisoned))
        assert np.all(grad[:2] == 0) and not np.any(np.isnan(grad))


def test_viterbi_bfloat16_runs_dp_in_float32():
    log_probs, logit_pad, labels, label_pad = random_batch(5)
    low = jnp.asarray(log_probs, jnp.bfloat16)
    ali_low = viterbi_align(low, logit_pad, labels, label_pad)
    ali_ref = viterbi_align(low.astype(jnp.float32), logit_pad, labels, label_pad)
    assert ali_low.score.dtype == jnp.float32
    np.testing.assert_array_equal(ali_low.positions, ali_ref.positions)
    np.testing.assert_array_equal(ali_low.score, ali_ref.score)


@pytest.mark.parametrize("unroll", [2, 3, 4, 16])  # 9 frames: a divisor, non-divisors and more than T
def test_viterbi_unroll_does_not_change_result(unroll):
    log_probs, logit_pad, labels, label_pad = random_batch(7)
    base = viterbi_align(log_probs, logit_pad, labels, label_pad, unroll=1)
    other = viterbi_align(log_probs, logit_pad, labels, label_pad, unroll=unroll)
    jax.tree.map(np.testing.assert_array_equal, base, other)


@pytest.mark.parametrize("seed", range(4))
def test_viterbi_packed_backpointers_match_brute_force_and_bytes(seed):
    """Bit-packed backpointers: brute force on small grids, and the byte table's result where the
    rows span several 32-bit words (L = 70: words of 32, 32 and 6 rows), with ties and padding."""
    small = random_batch(seed, tie_prone=seed % 2 == 0)
    ali = jax.tree.map(np.asarray, viterbi_align(*small, packed=True))
    for b, (best, winners) in enumerate(brute_viterbi(*small)):
        if winners:
            t_b = int(lengths(small[1])[b])
            np.testing.assert_array_equal(
                ali.positions[b, :t_b], max(winners, key=lambda r: tuple(r))
            )  # the earliest-moving best path
            np.testing.assert_allclose(ali.score[b], best, rtol=1e-5, atol=1e-5)
    large = random_batch(seed, batch=5, frames=120, rows=70, classes=4, tie_prone=seed % 2 == 0)
    jax.tree.map(np.testing.assert_array_equal, viterbi_align(*large), viterbi_align(*large, packed=True))


@pytest.mark.parametrize("fn", [viterbi_align, masked_align])
def test_no_retrace_for_new_data_of_same_shapes(fn):
    first = random_batch(10)
    fn(*first)
    size = fn._cache_size()
    fn(*random_batch(11))
    assert fn._cache_size() == size


@pytest.mark.parametrize("seed", range(8))
def test_masked_matches_brute_force(seed):
    log_probs, logit_pad, labels, label_pad = random_batch(seed, tie_prone=seed % 2 == 0)
    ali = jax.tree.map(np.asarray, masked_align(log_probs, logit_pad, labels, label_pad))
    t_len, l_len = lengths(logit_pad), lengths(label_pad)
    for b, rows in enumerate(brute_masked(log_probs, logit_pad, labels, label_pad)):
        if l_len[b] == 0 or l_len[b] > t_len[b]:
            assert not ali.feasible[b] and np.all(ali.positions[b] == -1)
            continue
        np.testing.assert_array_equal(ali.positions[b, : t_len[b]], rows)
        assert np.all(ali.positions[b, t_len[b] :] == -1)
        np.testing.assert_allclose(ali.score[b], path_score(log_probs[b], labels[b], rows), rtol=1e-5)
        # positions point at the first row carrying the chosen symbol
        for r in rows:
            assert r == list(labels[b, : l_len[b]]).index(labels[b, r])


@pytest.mark.parametrize("seed", range(6))
def test_uniform_align_remainder_goes_to_first_rows(seed):
    _, logit_pad, labels, label_pad = random_batch(seed, frames=10, rows=4)
    ali = jax.tree.map(np.asarray, uniform_align(logit_pad, label_pad, labels))
    for b, (t_b, l_b) in enumerate(zip(lengths(logit_pad), lengths(label_pad))):
        if l_b == 0 or l_b > t_b:
            assert not ali.feasible[b] and np.all(ali.positions[b] == -1)
            continue
        q, r = divmod(int(t_b), int(l_b))
        expected = np.repeat(np.arange(l_b), [q + 1] * r + [q] * (l_b - r))
        np.testing.assert_array_equal(ali.positions[b, :t_b], expected)
        np.testing.assert_array_equal(ali.symbols[b, :t_b], labels[b][expected])
        assert ali.score[b] == 0.0
    no_labels = uniform_align(logit_pad, label_pad)
    assert np.all(np.asarray(no_labels.symbols) == -1)


label_rows = st.lists(st.integers(0, 3), min_size=1, max_size=6)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), min_size=1, max_size=6))
def test_expand_then_compress_recovers_merged_labels(runs):
    labels = np.array([[s for s, _ in runs]], np.int32)
    durations = np.array([[d for _, d in runs]], np.int32)
    frames, frame_pad = expand(labels, durations)
    np.testing.assert_array_equal(np.asarray(frames)[0], np.repeat(labels[0], durations[0]))
    merged, merged_pad = compress(frames, frame_pad)
    want = [s for i, s in enumerate(labels[0]) if i == len(labels[0]) - 1 or s != labels[0][i + 1]]
    n = int((np.asarray(merged_pad)[0] == 0).sum())
    assert np.asarray(merged)[0, :n].tolist() == want


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=12), st.integers(0, 4))
def test_compress_then_expand_recovers_frames(frame_list, extra_pad):
    frames = np.array([frame_list + [7] * extra_pad], np.int32)  # junk on padded frames
    pad = np.array([[0] * len(frame_list) + [1] * extra_pad], np.float32)
    labels, label_pad = compress(frames, pad)
    run_lengths = [len(list(g)) for _, g in __import__("itertools").groupby(frame_list)]
    durations = np.zeros_like(np.asarray(labels))
    durations[0, : len(run_lengths)] = run_lengths
    back, back_pad = expand(labels, durations, num_frames=frames.shape[1])
    np.testing.assert_array_equal(np.asarray(back)[0, : len(frame_list)], frame_list)
    np.testing.assert_array_equal(np.asarray(back_pad), pad)


def test_expand_under_jit_needs_num_frames():
    labels = jnp.array([[1, 2]])
    with pytest.raises(ValueError, match="num_frames"):
        jax.jit(lambda d: expand(labels, d))(jnp.array([[1, 1]]))
    out, _ = jax.jit(lambda d: expand(labels, d, num_frames=3))(jnp.array([[1, 1]]))
    np.testing.assert_array_equal(out, [[1, 2, -1]])


def test_greedy_decode_merges_repeats_and_drops_blank():
    # argmax sequence 1 1 0 1 2 2 (last frame padded): merges to 1 0 1 2; without blank 0: 1 1 2
    seq = [1, 1, 0, 1, 2, 2, 2]
    log_probs = np.log(np.full((1, 7, 3), 0.1, np.float32))
    log_probs[0, np.arange(7), seq] = np.log(0.8)
    pad = np.array([[0, 0, 0, 0, 0, 0, 1]], np.float32)
    labels, label_pad = greedy_decode(log_probs, pad)
    assert np.asarray(labels)[0, : int((np.asarray(label_pad) == 0).sum())].tolist() == [1, 0, 1, 2]
    labels, label_pad = greedy_decode(log_probs, pad, blank_id=0)
    assert np.asarray(labels)[0, : int((np.asarray(label_pad) == 0).sum())].tolist() == [1, 1, 2]


@pytest.mark.parametrize(
    "change, error, name",
    [
        (lambda a: a.update(log_probs=a["log_probs"][0]), ValueError, "log_probs"),
        (lambda a: a.update(labels=a["labels"].astype(np.float32)), TypeError, "labels"),
        (lambda a: a.update(logit_paddings=a["logit_paddings"][:2]), ValueError, "logit_paddings"),
        (lambda a: a.update(label_paddings=a["label_paddings"][:, :2]), ValueError, "label_paddings"),
        (lambda a: a.update(log_probs=a["log_probs"].astype(np.int32)), TypeError, "log_probs"),
    ],
)
def test_trace_time_errors_name_the_argument(change, error, name):
    log_probs, logit_pad, labels, label_pad = random_batch(0)
    args = dict(log_probs=log_probs, logit_paddings=logit_pad, labels=labels, label_paddings=label_pad)
    change(args)
    for fn in (viterbi_align, masked_align):
        with pytest.raises(error, match=name):
            fn(**args)


def valid_batch():
    logit_pad = np.array([[0, 0, 0, 1], [0, 0, 0, 0]], np.float32)
    labels = np.array([[1, 2], [0, 0]], np.int32)
    label_pad = np.array([[0, 0], [0, 1]], np.float32)
    return dict(logit_paddings=logit_pad, labels=labels, label_paddings=label_pad, num_classes=3)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a["labels"].__setitem__((1, 0), 3), "labels: example 1 row 0 has id 3"),
        (lambda a: a["labels"].__setitem__((0, 1), -1), "labels: example 0 row 1 has id -1"),
        (lambda a: a["logit_paddings"].__setitem__((0, slice(None)), [0, 1, 1, 1]), "example 0 has a target of 2"),
        (lambda a: a["label_paddings"].__setitem__((1, 0), 1), "example 1 has an empty target"),
        (lambda a: a["logit_paddings"].__setitem__((1, 1), 1), "logit_paddings: example 1 is not right-padded"),
        (lambda a: a["label_paddings"].__setitem__((0, 0), 0.5), "label_paddings: example 0 has values"),
        (
            lambda a: a.update(log_probs=np.where(np.arange(4)[None, :, None] == 2, np.nan, np.zeros((2, 4, 3)))),
            "log_probs: example 0 frame 2",
        ),
        (
            lambda a: a.update(features=np.pad(np.full((1, 1, 5), np.inf), ((1, 0), (3, 0), (0, 0)))),
            "features: example 1 frame 3",
        ),
        (lambda a: a.update(logit_lengths=np.array([3, 5])), "logit_lengths: example 1 says 5"),
        (lambda a: a.update(label_lengths=np.array([1, 1])), "label_lengths: example 0 says 1"),
    ],
)
def test_check_batch_names_first_bad_example(change, message):
    args = valid_batch()
    jaxalign.check_batch(**args)  # the unmodified batch passes
    change(args)
    with pytest.raises(ValueError, match=message):
        jaxalign.check_batch(**args)


def test_check_batch_ignores_padded_frames_and_allows_neg_inf_log_probs():
    args = valid_batch()
    log_probs = np.full((2, 4, 3), -np.inf, np.float32)
    log_probs[0, 3] = np.nan  # padded frame of example 0
    jaxalign.check_batch(**args, log_probs=log_probs)


def test_viterbi_with_batch_sharded_over_devices_matches_single_device():
    """conftest.py splits the CPU into 2 XLA devices before JAX starts."""
    if jax.device_count() < 2:
        pytest.skip("needs --xla_force_host_platform_device_count=2 set before JAX starts")
    log_probs, logit_pad, labels, label_pad = random_batch(9, batch=8)
    mesh = jax.make_mesh((2,), ("data",))
    shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    sharded = viterbi_align(*(jax.device_put(x, shard) for x in (log_probs, logit_pad, labels, label_pad)))
    single = viterbi_align(log_probs, logit_pad, labels, label_pad)
    assert len(sharded.positions.sharding.device_set) == 2
    jax.tree.map(np.testing.assert_array_equal, sharded, single)


GRID_FUNCTIONS = {
    "viterbi_align": viterbi_align,
    "forward_score": jaxalign.forward_score,
    "masked_align": masked_align,
    "viterbi_align_pallas": jaxalign.viterbi_align_pallas,
    "forward_score_pallas": jaxalign.forward_score_pallas,
}


def _set(key, index, value):
    def change(args):
        args[key] = args[key].copy()
        args[key][index] = value

    return change


@pytest.mark.parametrize("name", GRID_FUNCTIONS)
@pytest.mark.parametrize(
    "change, message",
    [
        (_set("labels", (0, 0), 3), "labels: example 0 row 0 has id 3, outside the 3 classes"),
        (_set("labels", (1, 0), -1), "labels: example 1 row 0 has id -1"),  # -1 is the padding sentinel
        (_set("logit_paddings", (0, 3), 0.5), "logit_paddings: example 0 has values other than 0 and 1"),
        (_set("label_paddings", (1, 2), 1.0), "label_paddings: example 1 is not right-padded"),
        (_set("log_probs", (0, 2, 1), np.inf), "log_probs: example 0 frame 2 has a +inf"),
        (_set("log_probs", (1, 4, 0), np.nan), "log_probs: example 1 frame 4 has a NaN"),
    ],
)
def test_eager_calls_check_their_arguments_in_one_line(name, change, message):
    """Outside jit the public grid functions refuse what they would score wrongly; inside jit
    they check nothing (the same bad ids are clipped there)."""
    log_probs, logit_pad, labels, label_pad = random_batch(0)
    args = {"log_probs": log_probs, "logit_paddings": logit_pad, "labels": labels, "label_paddings": label_pad}
    GRID_FUNCTIONS[name](**args)  # the unchanged batch passes, infeasible rows and junk padding included
    change(args)
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        GRID_FUNCTIONS[name](*args.values())
    jax.jit(GRID_FUNCTIONS[name])(*args.values())  # traced: no check, no error


def test_positive_infinity_scores_minus_infinity_under_jit_never_nan():
    log_probs, logit_pad, labels, label_pad = random_batch(1)
    everywhere_inf = np.full_like(log_probs, np.inf)
    score = jax.jit(jaxalign.forward_score)(everywhere_inf, logit_pad, labels, label_pad)
    ali = jax.jit(viterbi_align)(everywhere_inf, logit_pad, labels, label_pad)
    assert np.all(np.asarray(score) == -np.inf) and np.all(np.asarray(ali.score) == -np.inf)


def optional_batch(seed, pattern, frames=9, rows=5):
    """random_batch (padding, repeats, L=1, L=T, T=1, L=0, L>T) with optional rows: random, all, none,
    or runs of adjacent optional rows; NaN and -inf sprinkled on some seeds."""
    log_probs, logit_pad, labels, label_pad = random_batch(seed, frames=frames, rows=rows)
    log_probs = np.array(log_probs)
    rng = np.random.default_rng(seed + 1000)
    optional = {
        "random": rng.integers(0, 2, size=labels.shape),
        "all": np.ones(labels.shape, int),
        "adjacent": np.resize([0, 1, 1, 0, 1], labels.shape),
        "none": np.zeros(labels.shape, int),
    }[pattern].astype(np.float32)
    if seed % 3 == 0:
        log_probs[0, min(2, frames - 1), :] = -np.inf
        log_probs[4, min(1, frames - 1), 0] = np.nan
    return log_probs, logit_pad, labels, label_pad, optional


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("pattern", ["random", "all", "adjacent", "none"])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("shape", EDGE_SHAPES)
def test_viterbi_with_optional_rows_matches_brute_force(seed, pattern, packed, shape):
    from tests.reference import brute_optional

    batch = optional_batch(seed, pattern, *shape)
    ali = jax.jit(viterbi_align, static_argnames="packed")(*batch, packed=packed)  # jit: a NaN is not refused
    frames = lengths(batch[1])
    for b, (best, winners, _, _, any_path) in enumerate(brute_optional(*batch)):
        assert bool(ali.feasible[b]) == any_path
        np.testing.assert_allclose(ali.score[b], best, rtol=1e-5)
        if any_path:
            assert np.asarray(ali.positions[b, : frames[b]]).tolist() in winners
            assert np.all(np.asarray(ali.positions[b, frames[b] :]) == -1)
        else:
            assert np.all(np.asarray(ali.positions[b]) == -1)
    if pattern == "none":  # no optional row: the plain grid's result
        plain = jax.jit(viterbi_align)(*batch[:4])
        np.testing.assert_array_equal(ali.positions, plain.positions)
        np.testing.assert_array_equal(ali.score, plain.score)


def test_optional_rows_are_refused_where_there_is_no_kernel_for_them():
    log_probs, logit_pad, labels, label_pad, optional = optional_batch(1, "random")  # (no NaN)
    for fn in (jaxalign.viterbi_align_pallas, jaxalign.forward_score_pallas):
        with pytest.raises(NotImplementedError, match="optional rows"):
            fn(log_probs, logit_pad, labels, label_pad, optional)
    with pytest.raises(ValueError, match="optional_rows: example 0 has values other than 0 and 1"):
        viterbi_align(log_probs, logit_pad, labels, label_pad, np.full(labels.shape, 0.5, np.float32))
    with pytest.raises(ValueError, match="shapes"):
        viterbi_align(log_probs, logit_pad, labels, label_pad, optional[:, :2])


EMPTY_BATCH_FUNCTIONS = {
    **GRID_FUNCTIONS,
    "viterbi_align optional rows": lambda *a: viterbi_align(*a, np.zeros(a[2].shape, np.float32)),
    "viterbi_align packed": lambda *a: viterbi_align(*a, packed=True),
    "forward_score optional rows": lambda *a: jaxalign.forward_score(*a, np.zeros(a[2].shape, np.float32)),
    "ctc_forced_align": lambda *a: jaxalign.ctc_forced_align(*a, blank_id=0),
}


@pytest.mark.parametrize("jitted", [False, True])
@pytest.mark.parametrize("name", EMPTY_BATCH_FUNCTIONS)
def test_an_empty_batch_gives_empty_outputs(name, jitted):
    """B = 0 (e.g. the last shard of a split): (0, T) paths and (0,) scores, with or without jit."""
    fn = EMPTY_BATCH_FUNCTIONS[name]
    args = (np.zeros((0, 4, 3), np.float32), np.zeros((0, 4)), np.zeros((0, 2), np.int32), np.zeros((0, 2)))
    out = (jax.jit(fn) if jitted else fn)(*args)
    if isinstance(out, tuple):
        for leaf, field in zip(out, out._fields):
            assert leaf.shape == ((0,) if field in ("score", "feasible") else (0, 4)), field
    else:
        assert out.shape == (0,)
        grad = jax.grad(lambda x: fn(x, *args[1:]).sum())(args[0])
        assert grad.shape == (0, 4, 3)


def test_check_batch_counts_the_frames_a_grid_with_optional_rows_needs():
    # rows "a sil b": 2 frames suffice when the silence is optional, 3 otherwise
    labels, label_pad, logit_pad = np.array([[0, 1, 2]]), np.zeros((1, 3)), np.array([[0.0, 0.0]])
    jaxalign.check_batch(logit_pad, labels, label_pad, num_classes=3, optional_rows=np.array([[0, 1, 0]]))
    with pytest.raises(ValueError, match="has a target of 3 symbols but only 2 frames"):
        jaxalign.check_batch(logit_pad, labels, label_pad, num_classes=3)
    with pytest.raises(ValueError, match=r"needs 2 frames \(its optional rows skipped\) but has only 1"):
        jaxalign.check_batch(logit_pad[:, :1], labels, label_pad, num_classes=3, optional_rows=np.array([[0, 1, 0]]))
