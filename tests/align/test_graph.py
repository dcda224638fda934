"""graph_viterbi and graph_forward against brute force over every path of small random graphs, and the
grid, optional rows and CTC built as graphs against viterbi_align, forward_score and ctc_forced_align."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxalign import (
    Graph,
    ctc_forced_align,
    ctc_graph,
    forward_score,
    graph_forward,
    graph_from_arcs,
    graph_viterbi,
    grid_graph,
    viterbi_align,
)
from tests.align.test_ctc import ctc_batch
from tests.align.test_viterbi import EDGE_SHAPES, optional_batch, random_batch
from tests.reference import brute_graph, lengths, score_or_neg_inf

WEIGHTS = ("arc_weights", "stay_weights", "start", "final")


def random_graph_batch(seed, frames=5, states=4, arcs=2, classes=3, batch=7, weighted=True, hostile=False):
    """Random log-probs and left-to-right graphs: several start and final states, parallel arcs,
    weights (some -inf), states without a self-loop, padded states (with junk arcs) and frames.
    Sequence 0 is full-length and surely feasible, 1 has one state, 2 no start state, 3 no final
    state, 4 one frame. hostile: NaN on a valid frame of sequence 5, -inf on a class of 6, and NaN
    on padded frames."""
    rng = np.random.default_rng(seed)
    log_probs = np.asarray(jax.nn.log_softmax(2 * rng.normal(size=(batch, frames, classes)), axis=-1), np.float32)
    t_len = rng.integers(1, frames + 1, size=batch)
    s_len = rng.integers(1, states + 1, size=batch)
    t_len[0], s_len[0], s_len[1], t_len[4] = frames, states, 1, 1
    row_S = np.arange(states)
    emissions = np.where(row_S[None] < s_len[:, None], rng.integers(0, classes, size=(batch, states)), -1)
    sources = (rng.random((batch, states, arcs)) * row_S[None, :, None]).astype(np.int32)  # in [0, s)
    has_arc = (rng.random((batch, states, arcs)) < 0.7) & (row_S[None, :, None] >= 1)
    has_arc &= sources < s_len[:, None, None]  # from valid states only (junk arcs into padded ones remain)
    arcs_BxSxK = np.where(has_arc, sources, -1).astype(np.int32)

    def weight(shape, p_none):
        w = rng.normal(size=shape).astype(np.float32) * 0.7 if weighted else np.zeros(shape, np.float32)
        return np.where(rng.random(shape) < p_none, -np.inf, w).astype(np.float32)

    arc_weights = weight((batch, states, arcs), 0.1)
    stay = weight((batch, states), 0.2)
    start = np.where(rng.random((batch, states)) < 0.5, weight((batch, states), 0.0), -np.inf).astype(np.float32)
    final = np.where(rng.random((batch, states)) < 0.5, weight((batch, states), 0.0), -np.inf).astype(np.float32)
    start[0, 0], final[0, states - 1], stay[0] = 0.0, 0.0, 0.0  # sequence 0: a path through the chain
    arcs_BxSxK[0, 1:, 0], arc_weights[0, 1:, 0] = row_S[:-1], 0.0
    start[2], final[3] = -np.inf, -np.inf
    if hostile:
        log_probs = log_probs.copy()
        log_probs[5, t_len[5] - 1, 0] = np.nan
        log_probs[6, :, 0] = -np.inf
        for b in range(batch):
            log_probs[b, t_len[b] :, 1] = np.nan  # padded frames: ignored
    logit_pad = (np.arange(frames)[None] >= t_len[:, None]).astype(np.float32)
    graph = Graph(emissions.astype(np.int32), arcs_BxSxK, arc_weights, stay, start, final)
    return log_probs, logit_pad, Graph(*(jnp.asarray(x) for x in graph))


GRAPH_SHAPES = [(5, 4), (1, 4), (5, 1), (1, 1), (3, 5)]  # (T, S): T=1, S=1, both, more states than frames


def forward_and_grads(log_probs, logit_pad, graph):
    """(B,) scores, the gradient of their finite sum w.r.t. log_probs and the graph's weights, as NumPy."""

    def total(log_probs, weights):
        score_B = jax.jit(graph_forward)(log_probs, logit_pad, graph._replace(**weights))
        return jnp.sum(jnp.where(jnp.isfinite(score_B), score_B, 0.0)), score_B

    weights = {name: getattr(graph, name) for name in WEIGHTS}
    (_, score), (grad, weight_grads) = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(
        jnp.asarray(log_probs), weights
    )
    return np.asarray(score), np.asarray(grad), jax.tree.map(np.asarray, weight_grads)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("hostile", [False, True])
@pytest.mark.parametrize("shape", GRAPH_SHAPES)
def test_graph_viterbi_and_forward_match_brute_force(seed, weighted, hostile, shape):
    """Value, path and gradient (log-probs and weights) over every path; under jit, so a NaN is not refused."""
    frames, states = shape
    log_probs, logit_pad, graph = random_graph_batch(seed, frames, states, weighted=weighted, hostile=hostile)
    ali = jax.tree.map(np.asarray, jax.jit(graph_viterbi)(log_probs, logit_pad, graph))
    score, grad, weight_grads = forward_and_grads(log_probs, logit_pad, graph)
    assert not np.isnan(grad).any() and not any(np.isnan(g).any() for g in weight_grads.values())
    emissions = np.asarray(graph.emissions)
    for b, (best, winners, total, occupancy, uses) in enumerate(brute_graph(log_probs, logit_pad, graph)):
        t_b = int(lengths(logit_pad)[b])
        assert bool(ali.feasible[b]) == bool(winners)
        if winners:
            np.testing.assert_allclose(ali.score[b], best, rtol=1e-5, atol=1e-5)
            assert ali.states[b, :t_b].tolist() in winners
            assert np.all(ali.states[b, t_b:] == -1)
        else:
            assert ali.score[b] == -np.inf and np.all(ali.states[b] == -1)
        if total == -np.inf:
            assert score[b] == -np.inf
        else:
            np.testing.assert_allclose(score[b], total, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(grad[b], occupancy, atol=2e-5)
        for name in WEIGHTS:
            np.testing.assert_allclose(weight_grads[name][b], uses[name], atol=2e-5, err_msg=name)
        if winners:  # the path's own log-probs are part of its score
            assert np.isfinite(score_or_neg_inf(log_probs[b], emissions[b], ali.states[b, :t_b]))
    assert not ali.feasible[2] and not ali.feasible[3]  # no start state, no final state
    if hostile:
        assert not ali.feasible[5] and score[5] == -np.inf and np.all(grad[5] == 0)


def test_occupancy_sums_to_one_on_long_sequences_with_several_final_states():
    """Shares normalised locally: at T=300 and scores near -1e3 the occupancy of each valid frame sums to 1
    to float32 rounding, with optional rows (two arcs) and two final states, as forward_score's does."""
    log_probs, logit_pad, labels, label_pad, optional = optional_batch(5, "all", frames=300, rows=40)
    log_probs = np.where(np.isnan(log_probs), -1.0, log_probs)
    log_probs[:, :, 0] = np.maximum(log_probs[:, :, 0], -30.0)  # no -inf: every valid frame has a path
    graph = grid_graph(jnp.asarray(labels), jnp.asarray(label_pad), jnp.asarray(optional))
    score, grad, weight_grads = forward_and_grads(log_probs, logit_pad, graph)
    live = np.isfinite(score)
    assert live.sum() >= 3 and score[live].min() < -500
    frame_ok = np.arange(300)[None, :] < lengths(logit_pad)[:, None]
    np.testing.assert_allclose(grad.sum(axis=2), np.where(frame_ok & live[:, None], 1.0, 0.0), atol=2e-5)
    np.testing.assert_allclose(weight_grads["final"].sum(axis=1), live.astype(float), atol=2e-6)


def test_the_tie_break_stays_then_takes_the_first_arc_and_ends_in_the_last_final_state():
    flat = np.zeros((1, 3, 1), np.float32)
    graph = graph_from_arcs([[0, 0, 0]], [[(0, 1), (0, 2)]], start=[[0]], final=[[1, 2]])
    ali = graph_viterbi(flat, np.zeros((1, 3)), graph)
    # Each cell prefers the stay, so read forwards the path moves as early as possible (as viterbi_align);
    # of the equal final states 1 and 2, the last.
    np.testing.assert_array_equal(ali.states[0], [0, 2, 2])


# -- the grid, optional rows and CTC as graphs -------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tie_prone", [False, True])
@pytest.mark.parametrize("shape", EDGE_SHAPES)
def test_grid_graph_gives_viterbi_align_and_forward_score(seed, tie_prone, shape):
    """Positions too where paths tie (few distinct log-probs): the same tie-break."""
    batch = random_batch(seed, frames=shape[0], rows=shape[1], tie_prone=tie_prone)
    log_probs, logit_pad, labels, label_pad = batch
    graph = grid_graph(jnp.asarray(labels), jnp.asarray(label_pad))
    ali, want = graph_viterbi(log_probs, logit_pad, graph), viterbi_align(*batch)
    np.testing.assert_array_equal(ali.states, want.positions)
    np.testing.assert_allclose(ali.score, want.score, rtol=1e-6)
    np.testing.assert_array_equal(ali.feasible, want.feasible)
    score, grad, _ = forward_and_grads(log_probs, logit_pad, graph)

    def total(x):
        s = forward_score(x, logit_pad, labels, label_pad)
        return jnp.sum(jnp.where(jnp.isfinite(s), s, 0.0)), s

    (_, want_score), want_grad = jax.value_and_grad(total, has_aux=True)(jnp.asarray(log_probs))
    np.testing.assert_allclose(score, want_score, rtol=1e-6)
    np.testing.assert_allclose(grad, want_grad, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shape", EDGE_SHAPES)
def test_sources_read_by_shifting_and_by_gathering_give_the_same_path(seed, shape):
    """`grid_graph`'s arcs all come from the state before (read by shifting); the same graph with a
    second arc slot holding one unusable (-inf) arc from the state before, not from two back,
    is read by gathering: the same states, scores and feasibility (ties included)."""
    batch = random_batch(seed, frames=shape[0], rows=shape[1], tie_prone=True)
    log_probs, logit_pad, labels, label_pad = batch
    graph = grid_graph(jnp.asarray(labels), jnp.asarray(label_pad))
    extra = jnp.full(graph.arcs.shape, -1, jnp.int32).at[:, -1:, 0].set(graph.arcs[:, -1:, 0])
    gathered = graph._replace(
        arcs=jnp.concatenate([graph.arcs, extra], axis=2),
        arc_weights=jnp.concatenate([graph.arc_weights, jnp.full(graph.arc_weights.shape, -jnp.inf)], axis=2),
    )
    a, b = graph_viterbi(log_probs, logit_pad, graph), graph_viterbi(log_probs, logit_pad, gathered)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.feasible, b.feasible)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("pattern", ["random", "all", "adjacent", "none"])
@pytest.mark.parametrize("tie_prone", [False, True])
@pytest.mark.parametrize("shape", EDGE_SHAPES)
def test_grid_graph_with_optional_rows_gives_viterbi_align_and_forward_score(seed, pattern, tie_prone, shape):
    """Under jit (NaN and -inf sprinkled on some seeds). viterbi_align keeps a path of score -inf where the
    grid fits; the graph calls that infeasible. tie_prone: log-probs rounded to integers, so paths tie."""
    batch = optional_batch(seed, pattern, *shape)
    if tie_prone:
        batch = (np.round(batch[0]), *batch[1:])
    log_probs, logit_pad, labels, label_pad, optional = batch
    graph = grid_graph(jnp.asarray(labels), jnp.asarray(label_pad), jnp.asarray(optional))
    ali = jax.tree.map(np.asarray, jax.jit(graph_viterbi)(log_probs, logit_pad, graph))
    want = jax.tree.map(np.asarray, jax.jit(viterbi_align)(*batch))
    live = want.feasible & np.isfinite(want.score)
    np.testing.assert_array_equal(ali.feasible, live)
    np.testing.assert_array_equal(ali.states[live], want.positions[live])
    np.testing.assert_allclose(ali.score, np.where(live, want.score, -np.inf), rtol=1e-6)
    score, grad, _ = forward_and_grads(log_probs, logit_pad, graph)

    def total(x):
        s = jax.jit(forward_score)(x, *batch[1:])
        return jnp.sum(jnp.where(jnp.isfinite(s), s, 0.0)), s

    (_, want_score), want_grad = jax.value_and_grad(total, has_aux=True)(jnp.asarray(log_probs))
    np.testing.assert_allclose(score, want_score, rtol=1e-5, atol=1e-6)  # three sources summed in another order
    np.testing.assert_allclose(grad, want_grad, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("frames, labels_max", [(9, 3), (9, 1), (3, 3), (1, 1), (30, 6)])
def test_ctc_graph_gives_ctc_forced_align(seed, frames, labels_max):
    log_probs, logit_pad, labels, label_pad = ctc_batch(seed, batch=8, frames=frames, labels_max=labels_max, classes=4)
    graph = ctc_graph(labels, label_pad, blank_id=0)
    ali = jax.tree.map(np.asarray, graph_viterbi(log_probs, logit_pad, graph))
    want = jax.tree.map(np.asarray, ctc_forced_align(log_probs, logit_pad, labels, label_pad, blank_id=0))
    tokens = np.where(
        ali.states >= 0, np.take_along_axis(np.asarray(graph.emissions), np.maximum(ali.states, 0), 1), -1
    )
    label_index = np.where((ali.states >= 0) & (ali.states % 2 == 1), ali.states // 2, -1)
    np.testing.assert_array_equal(ali.feasible, want.feasible)
    np.testing.assert_array_equal(tokens, want.tokens)
    np.testing.assert_array_equal(label_index, want.label_index)
    np.testing.assert_allclose(ali.score, want.score, rtol=1e-6)


# -- a researcher's own topology -------------------------------------------------------------------


def test_two_pronunciations_as_parallel_branches_that_meet_again():
    """A custom topology: "tomato" as t (ey | aa) m, with an optional pause before it and a prior of
    0.3 on "aa". The aligner picks the branch the frames support; the full sum covers both."""
    pause, t, ey, aa, m = range(5)
    graph = graph_from_arcs(
        emissions=[[pause, t, ey, aa, m], [pause, t, ey, aa, m]],
        arcs=[[(0, 1), (1, 2), (1, 3, np.log(0.3)), (2, 4), (3, 4)]] * 2,
        start=[{0: 0.0, 1: 0.0}] * 2,  # the pause may be skipped
        final=[[4]] * 2,
    )
    assert graph.arcs.shape == (2, 5, 2)  # K: the most arcs into one state ("m")
    frames = [[pause, t, ey, ey, m], [t, t, aa, aa, m]]
    log_probs = np.log(np.full((2, 5, 5), 0.02, np.float32))
    for b, classes in enumerate(frames):
        log_probs[b, np.arange(5), classes] = np.log(0.92)
    logit_pad = np.zeros((2, 5), np.float32)
    ali = graph_viterbi(log_probs, logit_pad, graph)
    np.testing.assert_array_equal(ali.states, [[0, 1, 2, 2, 4], [1, 1, 3, 3, 4]])
    np.testing.assert_allclose(ali.score[1], 5 * np.log(0.92) + np.log(0.3), rtol=1e-6)
    score, _, _ = forward_and_grads(log_probs, logit_pad, graph)
    for b, (_, _, total, _, _) in enumerate(brute_graph(log_probs, logit_pad, graph)):
        np.testing.assert_allclose(score[b], total, rtol=1e-6)


def test_graph_from_arcs_pads_the_batch_and_reads_weights():
    graph = graph_from_arcs(
        emissions=[[3], [1, 2, 1]],
        arcs=[[], [(0, 1, -0.5), (0, 2), (1, 2)]],
        start=[[0], {0: -1.0}],
        final=[[0], [1, 2]],
        stay=[0.0, {1: -0.2}],
    )
    np.testing.assert_array_equal(graph.emissions, [[3, -1, -1], [1, 2, 1]])
    np.testing.assert_array_equal(graph.arcs[1], [[-1, -1], [0, -1], [0, 1]])
    np.testing.assert_allclose(graph.arc_weights[1, 1, 0], -0.5)
    np.testing.assert_allclose(graph.stay_weights, [[0, -np.inf, -np.inf], [-np.inf, -0.2, -np.inf]])
    np.testing.assert_array_equal(graph.start, [[0, -np.inf, -np.inf], [-1, -np.inf, -np.inf]])
    with pytest.raises(ValueError, match="example 1 arc 2 -> 1 does not go forward"):
        graph_from_arcs([[0], [0, 0, 0]], [[], [(2, 1)]], start=[[0], [0]], final=[[0], [2]])


# -- checks, shapes and compilation ----------------------------------------------------------------


def _broken(graph, **arrays):
    return graph._replace(**{k: jnp.asarray(v) for k, v in arrays.items()})


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda g: _broken(g, arcs=_set(g.arcs, (0, 1, 0), 3)),
            "graph.arcs: example 0 state 1 has an arc from state 3; a graph is left-to-right",
        ),
        (
            lambda g: _broken(g, emissions=_set(g.emissions, (0, 2), 7)),
            "graph.emissions: example 0 state 2 emits class 7",
        ),
        (
            lambda g: _broken(g, stay_weights=_set(g.stay_weights, (0, 3), np.nan)),
            "graph.stay_weights: example 0 state 3",
        ),
        (
            lambda g: _broken(g, arc_weights=_set(g.arc_weights, (0, 2, 1), np.inf)),
            "graph.arc_weights: example 0 state 2",
        ),
    ],
)
def test_eager_calls_refuse_a_bad_graph_naming_example_and_state(change, message):
    log_probs, logit_pad, graph = random_graph_batch(0)
    for fn in (graph_viterbi, graph_forward):
        with pytest.raises(ValueError, match=message):
            fn(log_probs, logit_pad, change(graph))


def _set(array, index, value):
    out = np.array(array)
    out[index] = value
    return out


def test_eager_calls_refuse_a_nan_log_prob_and_an_arc_from_a_padded_state():
    log_probs, logit_pad, graph = random_graph_batch(0)
    bad = log_probs.copy()
    bad[0, 2, 1] = np.nan
    with pytest.raises(ValueError, match="log_probs: example 0 frame 2 has a NaN"):
        graph_viterbi(bad, logit_pad, graph)
    padded = _broken(graph, arcs=_set(graph.arcs, (1, 3, 0), 1))  # sequence 1 has one state
    with pytest.raises(ValueError, match="example 1 state 3 has an arc from padded state 1"):
        graph_forward(log_probs, logit_pad, padded)


def test_trace_time_errors_name_the_field():
    log_probs, logit_pad, graph = random_graph_batch(0)
    with pytest.raises(ValueError, match="graph shapes"):
        graph_viterbi(log_probs, logit_pad, graph._replace(arc_weights=graph.arc_weights[:, :, :1]))
    with pytest.raises(TypeError, match="graph.arcs"):
        graph_forward(log_probs, logit_pad, graph._replace(arcs=graph.arcs.astype(jnp.float32)))


@pytest.mark.parametrize("batch, frames, states", [(0, 4, 3), (3, 0, 3), (3, 4, 0)])
def test_empty_shapes_are_infeasible_results(batch, frames, states):
    log_probs = np.zeros((batch, frames, 2), np.float32)
    graph = Graph(
        jnp.zeros((batch, states), jnp.int32),
        jnp.full((batch, states, 1), -1, jnp.int32),
        jnp.zeros((batch, states, 1)),
        *(jnp.zeros((batch, states)) for _ in range(3)),
    )
    ali = graph_viterbi(log_probs, np.zeros((batch, frames)), graph)
    assert ali.states.shape == (batch, frames) and not np.any(ali.feasible)
    score, grad, _ = forward_and_grads(log_probs, np.zeros((batch, frames)), graph)
    assert score.shape == (batch,) and np.all(score == -np.inf) and np.all(grad == 0)


def test_no_retrace_for_new_data_of_same_shapes():
    graph_viterbi(*random_graph_batch(1))
    graph_forward(*random_graph_batch(1))
    sizes = graph_viterbi._cache_size(), graph_forward._cache_size()
    graph_viterbi(*random_graph_batch(2))
    graph_forward(*random_graph_batch(2))
    assert (graph_viterbi._cache_size(), graph_forward._cache_size()) == sizes


def test_backpointers_are_one_byte_per_frame_and_state():
    """The compiled call's temporaries hold the (T-1, B, S) uint8 table, not a float one."""
    batch, frames, states, arcs = 8, 200, 30, 2
    args = (
        jax.ShapeDtypeStruct((batch, frames, 5), jnp.float32),
        jax.ShapeDtypeStruct((batch, frames), jnp.float32),
        Graph(
            jax.ShapeDtypeStruct((batch, states), jnp.int32),
            jax.ShapeDtypeStruct((batch, states, arcs), jnp.int32),
            jax.ShapeDtypeStruct((batch, states, arcs), jnp.float32),
            *(jax.ShapeDtypeStruct((batch, states), jnp.float32) for _ in range(3)),
        ),
    )
    temp = graph_viterbi.lower(*args).compile().memory_analysis().temp_size_in_bytes
    table = (frames - 1) * batch * states
    assert table <= temp < 2 * table + 4 * batch * frames * 5 + 2**16


def test_an_arc_in_the_last_of_255_slots_is_backtraced_and_256_are_refused():
    """Backpointer code k + 1 = 255 still fits the byte; K = 256 would not."""
    arcs = np.full((1, 2, 255), -1, np.int32)
    arcs[0, 1, 254] = 0
    weights = np.zeros((1, 2, 255), np.float32)
    graph = Graph(
        jnp.asarray([[0, 1]], jnp.int32),
        jnp.asarray(arcs),
        jnp.asarray(weights),
        jnp.asarray([[0.0, -np.inf]]),
        jnp.asarray([[0.0, -np.inf]]),
        jnp.asarray([[-np.inf, 0.0]]),
    )
    log_probs = np.log(np.full((1, 3, 2), 0.5, np.float32))
    ali = graph_viterbi(log_probs, np.zeros((1, 3)), graph)
    np.testing.assert_array_equal(ali.states, [[0, 0, 1]])
    wide = graph._replace(arcs=jnp.pad(graph.arcs, ((0, 0), (0, 0), (0, 1)), constant_values=-1))
    wide = wide._replace(arc_weights=jnp.zeros(wide.arcs.shape))
    with pytest.raises(ValueError, match="at most 255 arcs per state"):
        graph_viterbi(log_probs, np.zeros((1, 3)), wide)
