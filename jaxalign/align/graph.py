"""Viterbi and full-sum over a batch of left-to-right graphs: the grid, its optional rows and CTC's
topology are three such graphs, and a researcher's own (a word with two pronunciations, an optional
pause between words) is a fourth, built with `graph_from_arcs`.

A graph of sequence b has S states. State s emits class `emissions[b, s]` on every frame it holds
(-1: a padded state, never held), may stay from one frame to the next (`stay_weights`, -inf: no
self-loop) and is entered along up to K arcs `arcs[b, s, k]` from earlier states (-1: no arc), each
with a log-weight. A path holds one state per frame, starts in a state with a finite `start` weight
and ends in one with a finite `final` weight; its score is the sum of its log-probs and weights.
Arcs only go forward (source < target), so every cycle is a self-loop and a frame step is one
gather per arc: the recursions below are `viterbi_align`'s with the neighbour rows read by index.
Where every arc of slot k comes from k + 1 states back (the grid, its optional rows, CTC, one-row
pauses), `graph_viterbi` reads that slot by shifting, as `viterbi_align` reads the row above.
"""

import functools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align.ctc import ctc_grid
from jaxalign.align.types import (
    check_array,
    check_same,
    end_rows,
    lengths,
    nan_free,
    row_scores,
    scan_unroll,
    skip_ok,
    valid_mask,
)
from jaxalign.align.validate import _first_bad, _padding_lengths, check_valid_frames_finite, checked_when_eager

_NEG_INF = -jnp.inf


class Graph(NamedTuple):
    """A batch of left-to-right graphs, padded to S states and K arcs into a state (a pytree).

    emissions:    (B, S) int32 class each state emits, in [0, C); -1 = padded state.
    arcs:         (B, S, K) int32 source state of each arc into state s, in [0, s); -1 = no arc.
    arc_weights:  (B, S, K) float32 log-weight of each arc (0 = free); ignored where arcs is -1.
    stay_weights: (B, S) float32 log-weight of staying in a state for one more frame; -inf = no self-loop.
    start:        (B, S) float32 log-weight of starting in a state; -inf = not a start state.
    final:        (B, S) float32 log-weight of ending in a state; -inf = not a final state.
    """

    emissions: jax.Array
    arcs: jax.Array
    arc_weights: jax.Array
    stay_weights: jax.Array
    start: jax.Array
    final: jax.Array


class GraphAlignment(NamedTuple):
    """The best path through each sequence's graph (a pytree).

    states:   (B, T) int32 state held on each frame; -1 on padded frames and infeasible sequences.
    score:    (B,) float32 the path's log-probs plus its weights; -inf where infeasible.
    feasible: (B,) bool: a path of finite score exists (T_b >= 1, no NaN on a valid frame).
    """

    states: jax.Array
    score: jax.Array
    feasible: jax.Array


# -- checks ---------------------------------------------------------------------------------------


def check_graph_inputs(log_probs, logit_paddings, graph) -> None:
    """Trace-time checks: ranks, dtypes and agreeing sizes of the arguments and the graph's fields."""
    check_array("log_probs", log_probs, 3, "float")
    check_array("logit_paddings", logit_paddings, 2, "padding")
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a Graph, got {type(graph).__name__}")
    check_array("graph.emissions", graph.emissions, 2, "int")
    check_array("graph.arcs", graph.arcs, 3, "int")
    check_array("graph.arc_weights", graph.arc_weights, 3, "float")
    for name in ("stay_weights", "start", "final"):
        check_array(f"graph.{name}", getattr(graph, name), 2, "float")
    check_same({"log_probs": log_probs.shape[0], "logit_paddings": logit_paddings.shape[0]}, "batch sizes")
    check_same({"log_probs": log_probs.shape[1], "logit_paddings": logit_paddings.shape[1]}, "frame counts")
    shapes = {name: tuple(getattr(graph, name).shape) for name in ("emissions", "stay_weights", "start", "final")}
    check_same({**shapes, "arcs[..., 0]": tuple(graph.arcs.shape[:2])}, "graph shapes (B, S)")
    check_same({"arcs": tuple(graph.arcs.shape), "arc_weights": tuple(graph.arc_weights.shape)}, "graph shapes")
    check_same({"log_probs": log_probs.shape[0], "graph": graph.emissions.shape[0]}, "batch sizes")


def check_graph_arguments(log_probs, logit_paddings, graph) -> None:
    """The value checks of `graph_viterbi`'s and `graph_forward`'s concrete arguments (run outside
    `jax.jit` by `checked_when_eager`): logit_paddings 0/1 and right-padded; emissions in [-1, C);
    every arc from an earlier state (left-to-right) that is not padded; no NaN or +inf weight; no
    NaN or +inf log-prob on a valid frame. Raises ValueError naming the field, example and state."""
    check_graph_inputs(log_probs, logit_paddings, graph)
    frame_len = _padding_lengths("logit_paddings", logit_paddings)
    emissions = np.asarray(graph.emissions)
    arcs = np.asarray(graph.arcs)
    num_classes = log_probs.shape[2]

    def refuse(bad_BxS, message):
        b = _first_bad(bad_BxS.any(axis=tuple(range(1, bad_BxS.ndim))))
        if b is not None:
            s = int(np.flatnonzero(bad_BxS[b].any(axis=tuple(range(1, bad_BxS.ndim - 1))))[0])
            raise ValueError(message(b, s))

    refuse(
        (emissions < -1) | (emissions >= num_classes),
        lambda b, s: (
            f"graph.emissions: example {b} state {s} emits class {emissions[b, s]}, outside the "
            f"{num_classes} classes of log_probs (-1 marks a padded state)"
        ),
    )
    state_S = np.arange(arcs.shape[1])[None, :, None]
    source = np.maximum(arcs, 0)
    padded_source = (arcs >= 0) & (emissions[np.arange(arcs.shape[0])[:, None, None], source] < 0)

    def first_arc(b, s, bad):
        return int(arcs[b, s][np.flatnonzero(bad[b, s])[0]])

    backwards = (arcs < -1) | (arcs >= state_S)
    refuse(
        backwards,
        lambda b, s: (
            f"graph.arcs: example {b} state {s} has an arc from state {first_arc(b, s, backwards)}; "
            "a graph is left-to-right: every arc comes from an earlier state (or is -1, none)"
        ),
    )
    refuse(
        padded_source,
        lambda b, s: f"graph.arcs: example {b} state {s} has an arc from padded state {first_arc(b, s, padded_source)}",
    )
    for name in ("arc_weights", "stay_weights", "start", "final"):
        values = np.asarray(getattr(graph, name), np.float32)
        refuse(
            np.isnan(values) | (values == np.inf),
            lambda b, s, name=name: f"graph.{name}: example {b} state {s} has a NaN or +inf log-weight",
        )
    check_valid_frames_finite(log_probs, frame_len)


# -- the kernels ----------------------------------------------------------------------------------


class _Prepared(NamedTuple):
    """A graph in the form the recursions read, computed once before the scan."""

    emissions_BxS: jax.Array  # clipped class ids
    state_ok_BxS: jax.Array
    source_BxSxK: jax.Array  # flat index b * S + source into alpha with one -inf appended; B * S for none
    own_source_BxSxK: jax.Array  # the same into alpha as it is; none: b * S (state 0, read with a -inf weight)
    arc_w_BxSxK: jax.Array  # -inf where there is no arc
    stay_w_BxS: jax.Array
    start_BxS: jax.Array
    final_BxS: jax.Array


def _no_nan(w):
    """A weight that is NaN or +inf counts as -inf under jit (outside it, it is refused)."""
    w = jnp.asarray(w, jnp.float32)
    return jnp.where(jnp.isnan(w) | (w == jnp.inf), _NEG_INF, w)


def _prepare(graph: Graph, num_classes: int) -> _Prepared:
    batch, num_states, num_arcs = graph.arcs.shape
    state_ok_BxS = graph.emissions >= 0
    arcs_BxSxK = graph.arcs.astype(jnp.int32)
    # A source must be an earlier, unpadded state; anything else is dropped (under jit it cannot be refused).
    source_ok = (arcs_BxSxK >= 0) & (arcs_BxSxK < jnp.arange(num_states)[None, :, None])
    source_ok &= jnp.take_along_axis(
        state_ok_BxS, jnp.clip(arcs_BxSxK, 0, num_states - 1).reshape(batch, num_states * num_arcs), 1
    ).reshape(arcs_BxSxK.shape)
    flat_BxSxK = jnp.arange(batch, dtype=jnp.int32)[:, None, None] * num_states + arcs_BxSxK

    def on_states(w):
        return jnp.where(state_ok_BxS, _no_nan(w), _NEG_INF)

    return _Prepared(
        emissions_BxS=jnp.clip(graph.emissions.astype(jnp.int32), 0, num_classes - 1),
        state_ok_BxS=state_ok_BxS,
        source_BxSxK=jnp.where(source_ok, flat_BxSxK, batch * num_states),
        own_source_BxSxK=jnp.where(source_ok, flat_BxSxK, flat_BxSxK - arcs_BxSxK),
        arc_w_BxSxK=jnp.where(source_ok & state_ok_BxS[:, :, None], _no_nan(graph.arc_weights), _NEG_INF),
        stay_w_BxS=on_states(graph.stay_weights),
        start_BxS=on_states(graph.start),
        final_BxS=on_states(graph.final),
    )


def _arrivals(alpha_BxS, prep: _Prepared):
    """(B, S, K) log-score of arriving in each state along each arc: one gather from the flat alphas."""
    flat = jnp.concatenate([alpha_BxS.reshape(-1), jnp.full((1,), _NEG_INF, alpha_BxS.dtype)])
    return flat[prep.source_BxSxK] + prep.arc_w_BxSxK


def _empty_graph(graph, num_frames) -> bool:
    return graph.arcs.shape[1] == 0 or num_frames == 0


@functools.partial(checked_when_eager, check=check_graph_arguments)
@functools.partial(jax.jit, static_argnames=("unroll",))
def graph_viterbi(log_probs, logit_paddings, graph: Graph, *, unroll: int | None = None) -> GraphAlignment:
    """Best path through each sequence's left-to-right graph.

    Args:
      log_probs: (B, T, C) float32 or bfloat16 per-frame log-probabilities (the DP runs in float32).
      logit_paddings: (B, T) bool/float, 1 = padded frame; valid frames come first.
      graph: a `Graph` of the batch (`grid_graph`, `ctc_graph`, `graph_from_arcs`).
      unroll: frames per iteration of the scan loops (speed only); None: 1 on CPU, 16 on GPU/TPU.

    Returns:
      `GraphAlignment`. A sequence is infeasible where no path has a finite score (no start or final
      state, too few frames, every path through a -inf log-prob or weight; this is where it differs
      from `viterbi_align`, which still returns a path of score -inf when the grid fits) and where a
      valid frame holds a NaN; +inf log-probs count as -inf. T = 0 or S = 0 make every sequence
      infeasible.

    Tie-break (deterministic): at each cell staying wins over an arc and arc k over arc k+1; among
    final states, the highest-numbered. With `grid_graph` that is `viterbi_align`'s path.

    Checks: called with concrete arrays (outside `jax.jit`) `check_graph_arguments` runs first and a
    ValueError names the field, example and state (or frame). Under `jit` nothing is checked: a
    backward arc, or one from a padded state, is dropped, and NaN or +inf weights count as -inf.
    Memory: the (T-1, B, S) backpointers, one byte each (the arc taken: 0 = stay, k + 1 = arc k, so
    K <= 255), and no copy of log_probs; the backtrace runs on device in the same call.
    """
    check_graph_inputs(log_probs, logit_paddings, graph)
    batch, num_frames, num_classes = log_probs.shape
    if graph.arcs.shape[2] > 255:
        raise ValueError(
            f"graph_viterbi keeps one-byte backpointers: at most 255 arcs per state, got K={graph.arcs.shape[2]}"
        )
    if _empty_graph(graph, num_frames):
        empty = jnp.full((batch, num_frames), -1, jnp.int32)
        return GraphAlignment(empty, jnp.full((batch,), _NEG_INF, jnp.float32), jnp.zeros((batch,), bool))
    unroll = scan_unroll(unroll)
    prep = _prepare(graph, num_classes)
    frame_len_B = lengths(logit_paddings)
    num_arcs = graph.arcs.shape[2]
    # Each frame's emissions are gathered from the (B, T * C) log_probs by index, without the (T, B, C)
    # transposed copy a scan over frames would read (4 MB less at B=64 T=400 C=40, and ~5 % faster on CPU).
    log_probs_BxTC = log_probs.reshape(batch, num_frames * num_classes)

    def emit(t):
        # NaN and +inf read as -inf (NaN < inf is false); a padded state is never reached, whatever it reads.
        e_BxS = jnp.take_along_axis(log_probs_BxTC, prep.emissions_BxS + t * num_classes, axis=1).astype(jnp.float32)
        return jnp.where(e_BxS < jnp.inf, e_BxS, _NEG_INF)

    alpha0_BxS = prep.start_BxS + emit(0)
    num_states = graph.arcs.shape[1]

    def gathered(alpha_BxS, k):  # no appended -inf cell (`_arrivals`): one copy of the alphas less a frame
        return alpha_BxS.reshape(-1)[prep.own_source_BxSxK[:, :, k]]

    def shifted(alpha_BxS, k):  # arc slot k from k + 1 states back: a shift, as `viterbi_align` reads its rows
        return jnp.pad(alpha_BxS, ((0, 0), (k + 1, 0)), constant_values=_NEG_INF)[:, :num_states]

    def forward(sources, alpha_BxS, inputs):
        live_B, t = inputs
        best_BxS = alpha_BxS + prep.stay_w_BxS
        code_BxS = None
        for k in range(num_arcs):  # strictly better only: stay first, then arc 0, 1, ...
            arrive_BxS = sources(alpha_BxS, k) + prep.arc_w_BxSxK[:, :, k]
            take_BxS = arrive_BxS > best_BxS
            code_BxS = take_BxS.astype(jnp.uint8) if k == 0 else jnp.where(take_BxS, jnp.uint8(k + 1), code_BxS)
            best_BxS = jnp.maximum(best_BxS, arrive_BxS)  # no NaN here: emissions and weights are cleaned
        new_BxS = best_BxS + emit(t)
        return jnp.where(live_B[:, None], new_BxS, alpha_BxS), code_BxS  # frozen after T_b: the end is chosen there

    live_TxB = valid_mask(logit_paddings).T[1:]
    frames = (live_TxB, jnp.arange(1, num_frames, dtype=jnp.int32))

    def scan(sources):
        return lambda: jax.lax.scan(functools.partial(forward, sources), alpha0_BxS, frames, unroll=unroll)

    # The grid, its optional rows, CTC's topology and a corpus' one-row pauses have every arc of slot k
    # from k + 1 states back: then the sources are read by shifting (one gather a slot less each frame).
    back_K = jnp.arange(1, num_arcs + 1, dtype=jnp.int32)
    by_shift = jnp.all((graph.arcs < 0) | (graph.arcs == jnp.arange(num_states)[None, :, None] - back_K))
    alpha_end_BxS, backptr_TxBxS = jax.lax.cond(by_shift, scan(shifted), scan(gathered))
    end_BxS = alpha_end_BxS + prep.final_BxS
    end_state_B = num_states - 1 - jnp.argmax(end_BxS[:, ::-1], axis=1).astype(jnp.int32)  # the last of equals
    score_B = jnp.max(end_BxS, axis=1)
    feasible_B = (score_B > _NEG_INF) & (frame_len_B >= 1) & nan_free(log_probs, logit_paddings)
    arcs_BxSK = graph.arcs.astype(jnp.int32).reshape(batch, graph.arcs.shape[1] * num_arcs)

    def backward(state_B, inputs):
        t, backptr_BxS = inputs
        code_B = jnp.take_along_axis(backptr_BxS, state_B[:, None], axis=1)[:, 0].astype(jnp.int32)
        code_B = jnp.where(t < frame_len_B, code_B, 0)  # padded frames read "stay"
        source_B = jnp.take_along_axis(arcs_BxSK, (state_B * num_arcs + jnp.maximum(code_B - 1, 0))[:, None], axis=1)[
            :, 0
        ]
        prev_B = jnp.where(code_B == 0, state_B, jnp.maximum(source_B, 0))
        return prev_B, prev_B

    _, before_TxB = jax.lax.scan(
        backward, end_state_B, (jnp.arange(1, num_frames), backptr_TxBxS), reverse=True, unroll=unroll
    )
    states_BxT = jnp.concatenate([before_TxB, end_state_B[None, :]], axis=0).T
    keep_BxT = valid_mask(logit_paddings) & feasible_B[:, None]
    return GraphAlignment(
        states=jnp.where(keep_BxT, states_BxT, -1).astype(jnp.int32),
        score=jnp.where(feasible_B, score_B, _NEG_INF).astype(jnp.float32),
        feasible=feasible_B,
    )


@functools.partial(checked_when_eager, check=check_graph_arguments)
@functools.partial(jax.jit, static_argnames=("unroll",))
def graph_forward(log_probs, logit_paddings, graph: Graph, *, unroll: int | None = None) -> jax.Array:
    """Log of the summed probability of all paths through each sequence's graph: `graph_viterbi`'s
    log-sum-exp twin (with `grid_graph`, `forward_score`).

    Args: as `graph_viterbi`.

    Returns:
      (B,) float32; -inf where no path has a finite score or a valid frame holds a NaN. Differentiable
      (reverse mode, a custom VJP): with respect to log_probs the gradient is the posterior probability
      that frame t sits in a state of class c ((B, T, C), in log_probs' dtype; 0 on padded frames, on
      -inf sequences and never NaN); with respect to the graph's weights it is the expected number of
      times each arc, stay, start and final is used. No gradient flows to `emissions` or `arcs`.
    """
    check_graph_inputs(log_probs, logit_paddings, graph)
    if _empty_graph(graph, log_probs.shape[1]):
        return jnp.full((log_probs.shape[0],), _NEG_INF, jnp.float32)
    return _graph_forward(scan_unroll(unroll), log_probs, logit_paddings, graph)


def _logsumexp_arrivals(stay_BxS, arrive_BxSxK):
    """(B, S) log-sum of the stay and the K arrivals, -inf (not NaN) where all are -inf."""
    top_BxS = jnp.maximum(stay_BxS, jnp.max(arrive_BxSxK, axis=2, initial=_NEG_INF))
    safe_BxS = jnp.where(jnp.isfinite(top_BxS), top_BxS, 0.0)
    total_BxS = jnp.exp(stay_BxS - safe_BxS) + jnp.sum(jnp.exp(arrive_BxSxK - safe_BxS[:, :, None]), axis=2)
    return jnp.log(total_BxS) + safe_BxS


def _graph_alphas(unroll, log_probs, logit_paddings, graph, keep):
    """Forward recursion: (B,) score, the (T-1, B, S) alphas before frames 1.. T-1 (if keep), the
    alphas at each sequence's last frame, and the prepared graph."""
    prep = _prepare(graph, log_probs.shape[2])
    log_probs_TxBxC = jnp.swapaxes(log_probs, 0, 1)

    def emit(log_probs_BxC):
        return row_scores(log_probs_BxC, prep.emissions_BxS, prep.state_ok_BxS)

    def step(alpha_BxS, inputs):
        live_B, log_probs_BxC = inputs
        reach_BxS = _logsumexp_arrivals(alpha_BxS + prep.stay_w_BxS, _arrivals(alpha_BxS, prep))
        new_BxS = reach_BxS + emit(log_probs_BxC)
        return jnp.where(live_B[:, None], new_BxS, alpha_BxS), alpha_BxS if keep else None

    live_TxB = valid_mask(logit_paddings).T
    alpha0_BxS = jnp.where(live_TxB[0][:, None], prep.start_BxS + emit(log_probs_TxBxC[0]), _NEG_INF)
    alpha_end_BxS, alpha_TxBxS = jax.lax.scan(step, alpha0_BxS, (live_TxB[1:], log_probs_TxBxC[1:]), unroll=unroll)
    score_B = jax.nn.logsumexp(alpha_end_BxS + prep.final_BxS, axis=1)
    score_B = jnp.where(nan_free(log_probs, logit_paddings) & (score_B > _NEG_INF), score_B, _NEG_INF)
    return score_B, alpha_TxBxS, alpha_end_BxS, prep


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _graph_forward(unroll, log_probs, logit_paddings, graph):
    return _graph_alphas(unroll, log_probs, logit_paddings, graph, keep=False)[0]


def _graph_forward_fwd(unroll, log_probs, logit_paddings, graph):
    score_B, alpha_TxBxS, alpha_end_BxS, prep = _graph_alphas(unroll, log_probs, logit_paddings, graph, keep=True)
    return score_B, (alpha_TxBxS, alpha_end_BxS, score_B, prep, log_probs, logit_paddings, graph)


def _graph_forward_bwd(unroll, residuals, score_bar_B):
    """Occupancies gamma_t[s] = P(in state s at frame t | all frames), recursed backwards: each cell
    hands its occupancy to the cells it came from (itself by the stay, the K arc sources) in
    proportion to their probabilities, normalised locally (a softmax of the sources' differences to the
    best one, as `forward_score`'s backward pass shares by sigmoids of differences); the arc shares are scattered back onto their sources with one segment sum. The shares
    summed over frames are the expected uses of each stay and arc, the weights' gradients."""
    alpha_TxBxS, alpha_end_BxS, score_B, prep, log_probs, logit_paddings, graph = residuals
    batch, num_states = alpha_end_BxS.shape
    end_BxS = alpha_end_BxS + prep.final_BxS
    top_B = jnp.max(end_BxS, axis=1)
    end_e_BxS = jnp.exp(end_BxS - jnp.where(jnp.isfinite(top_B), top_B, 0.0)[:, None])
    total_B = jnp.sum(end_e_BxS, axis=1)
    ok_B = jnp.isfinite(score_B) & (total_B > 0)  # a -inf score has nothing to share out
    gamma_end_BxS = jnp.where(ok_B[:, None], end_e_BxS / jnp.where(ok_B, total_B, 1.0)[:, None], 0.0)

    def step(carry, inputs):
        gamma_BxS, stays_BxS, uses_BxSxK = carry
        live_B, alpha_BxS = inputs
        stay_BxS = alpha_BxS + prep.stay_w_BxS
        arrive_BxSxK = _arrivals(alpha_BxS, prep)
        # Shares normalised from differences to the best source (a softmax), so they sum to 1 to
        # float32 rounding: exp(source - logsumexp) rounds the large logsumexp and drifted by 1e-3 at T=400.
        top_BxS = jnp.maximum(stay_BxS, jnp.max(arrive_BxSxK, axis=2, initial=_NEG_INF))
        top_BxS = jnp.where(jnp.isfinite(top_BxS), top_BxS, 0.0)
        stay_e_BxS = jnp.exp(stay_BxS - top_BxS)
        arrive_e_BxSxK = jnp.exp(arrive_BxSxK - top_BxS[:, :, None])
        total_BxS = stay_e_BxS + jnp.sum(arrive_e_BxSxK, axis=2)
        live_BxS = live_B[:, None] & (gamma_BxS > 0) & (total_BxS > 0)
        hand_BxS = jnp.where(live_BxS, gamma_BxS / jnp.where(live_BxS, total_BxS, 1.0), 0.0)
        stayed_BxS = hand_BxS * stay_e_BxS
        arrived_BxSxK = hand_BxS[:, :, None] * arrive_e_BxSxK
        sources_BxS = jax.ops.segment_sum(
            arrived_BxSxK.reshape(-1), prep.source_BxSxK.reshape(-1), num_segments=batch * num_states + 1
        )[:-1].reshape(batch, num_states)
        prev_BxS = jnp.where(live_B[:, None], stayed_BxS + sources_BxS, gamma_BxS)
        carry = (prev_BxS, stays_BxS + stayed_BxS, uses_BxSxK + arrived_BxSxK)
        return carry, jnp.where(live_B[:, None], gamma_BxS, 0.0)

    live_TxB = valid_mask(logit_paddings).T
    zeros_BxSxK = jnp.zeros(prep.arc_w_BxSxK.shape, jnp.float32)
    init = (gamma_end_BxS, jnp.zeros_like(gamma_end_BxS), zeros_BxSxK)
    (gamma0_BxS, stays_BxS, uses_BxSxK), gamma_TxBxS = jax.lax.scan(
        step, init, (live_TxB[1:], alpha_TxBxS), reverse=True, unroll=unroll
    )
    gamma0_BxS = jnp.where(live_TxB[0][:, None], gamma0_BxS, 0.0)
    gamma_TxBxS = jnp.concatenate([gamma0_BxS[None], gamma_TxBxS], axis=0)
    onehot_BxSxC = jax.nn.one_hot(
        jnp.where(prep.state_ok_BxS, prep.emissions_BxS, -1), log_probs.shape[2], dtype=jnp.float32
    )
    # HIGHEST: a GPU's default float32 matmul rounds to TF32 (10-bit mantissa).
    grad_BxTxC = jnp.einsum("tbs,bsc->btc", gamma_TxBxS, onehot_BxSxC, precision=jax.lax.Precision.HIGHEST)
    bar_Bx1 = score_bar_B[:, None]
    weight_grads = graph._replace(
        emissions=None,
        arcs=None,
        arc_weights=(uses_BxSxK * bar_Bx1[:, :, None]).astype(graph.arc_weights.dtype),
        stay_weights=(stays_BxS * bar_Bx1).astype(graph.stay_weights.dtype),
        start=(gamma0_BxS * bar_Bx1).astype(graph.start.dtype),
        final=(gamma_end_BxS * bar_Bx1).astype(graph.final.dtype),
    )
    return (grad_BxTxC * score_bar_B[:, None, None]).astype(log_probs.dtype), None, weight_grads


_graph_forward.defvjp(_graph_forward_fwd, _graph_forward_bwd)


# -- builders -------------------------------------------------------------------------------------


def grid_graph(labels, label_paddings, optional_rows=None) -> Graph:
    """The target-ordered grid as a graph (`viterbi_align`'s and `forward_score`'s): state l emits
    labels[b, l], stays for free and is entered from state l-1; with optional_rows (B, L), 1 = the
    path may skip the row, also from state l-2 over an optional l-1 (arc 1), may start in state 1
    when state 0 is optional and end in state L_b-2 when L_b-1 is. K = 1 without optional rows, 2 with.

    labels: (B, L) int; label_paddings: (B, L), 1 = padded row, valid rows first. Jittable."""
    batch, num_rows = labels.shape
    ok_BxL = valid_mask(label_paddings)
    row_L = jnp.arange(num_rows, dtype=jnp.int32)
    emissions = jnp.where(ok_BxL, labels.astype(jnp.int32), -1)
    above_BxL = jnp.where(ok_BxL & (row_L >= 1), row_L - 1, -1)
    zero, dead = jnp.float32(0.0), jnp.float32(_NEG_INF)
    start = jnp.where(ok_BxL & (row_L == 0), zero, dead)
    last_B = lengths(label_paddings) - 1
    final = jnp.where(ok_BxL & (row_L == last_B[:, None]), zero, dead)
    arcs = above_BxL[:, :, None]
    if optional_rows is not None:
        skip_BxL = skip_ok(jnp.asarray(optional_rows), ok_BxL)
        arcs = jnp.stack([above_BxL, jnp.where(skip_BxL & (row_L >= 2), row_L - 2, -1)], axis=2)
        start = jnp.where(skip_BxL & (row_L == 1), zero, start)  # row 0 optional: start past it
        _, before_ok_B = end_rows(label_paddings, optional_rows)
        final = jnp.where(before_ok_B[:, None] & (row_L == last_B[:, None] - 1), zero, final)
    return Graph(
        emissions=emissions,
        arcs=arcs.astype(jnp.int32),
        arc_weights=jnp.zeros(arcs.shape, jnp.float32),
        stay_weights=jnp.where(ok_BxL, zero, dead),
        start=start,
        final=final,
    )


def ctc_graph(labels, label_paddings, blank_id: int) -> Graph:
    """CTC's topology as a graph: the 2U+1 states `blank l_1 blank ... l_U blank` of `ctc_grid`,
    whose blanks may be skipped except between two equal labels (`ctc_forced_align`'s paths).
    labels: (B, U) int label ids (not the blank); label_paddings: (B, U), 1 = padded. State 2u+1
    is label u; even states are blanks. Jittable."""
    return grid_graph(*ctc_grid(jnp.asarray(labels), jnp.asarray(label_paddings), blank_id))


def _weights(spec, num_states: int, default: float) -> list[float]:
    """A per-state weight spec -> S log-weights: a number (every state), a list of state ids
    (weight 0), a {state: log-weight} mapping, or None (every state `default`)."""
    if spec is None:
        return [default] * num_states
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return [float(spec)] * num_states
    out = [-np.inf] * num_states
    items = spec.items() if isinstance(spec, Mapping) else ((s, 0.0) for s in spec)
    for state, weight in items:
        out[state] = float(weight)
    return out


def graph_from_arcs(
    emissions: Sequence[Sequence[int]],
    arcs: Sequence[Sequence[tuple]],
    start: Sequence,
    final: Sequence,
    stay: Sequence | float | None = 0.0,
) -> Graph:
    """A batch of graphs from Python lists, one entry per sequence, padded to the longest (S) and
    the most arcs into one state (K, at least 1). Built on the host; for an input pipeline.

    Args:
      emissions: per sequence, the class of each state, in state order (arcs go forward in it).
      arcs: per sequence, (source, target) or (source, target, log_weight) with source < target.
      start, final: per sequence, a list of state ids (weight 0) or a {state: log_weight} dict.
      stay: log-weight of every state's self-loop (0.0, the default; -inf: none), or per sequence a
        number, a list of the states that may stay, or a {state: log_weight} dict.

    Example, "tomato" with two pronunciations of its second vowel that meet again at "m"::

        graph = graph_from_arcs(
            emissions=[[T, EY, AA, M]],
            arcs=[[(0, 1), (0, 2, log(0.3)), (1, 3), (2, 3)]],
            start=[[0]], final=[[3]])
    """
    batch = len(emissions)
    if not (len(arcs) == len(start) == len(final) == batch):
        raise ValueError(
            f"one entry per sequence: {batch} emissions, {len(arcs)} arcs, {len(start)} start, {len(final)} final"
        )
    stays = stay if isinstance(stay, Sequence) else [stay] * batch
    num_states = max((len(e) for e in emissions), default=0)
    into = [[[] for _ in e] for e in emissions]
    for b, arcs_b in enumerate(arcs):
        for arc in arcs_b:
            source, target, weight = (*arc, 0.0) if len(arc) == 2 else arc
            if not 0 <= source < target < len(emissions[b]):
                raise ValueError(
                    f"arcs: example {b} arc {source} -> {target} does not go forward between its {len(emissions[b])} states"
                )
            into[b][target].append((source, float(weight)))
    num_arcs = max([1] + [len(a) for states in into for a in states])
    out_emissions = np.full((batch, num_states), -1, np.int32)
    out_arcs = np.full((batch, num_states, num_arcs), -1, np.int32)
    out_weights = np.zeros((batch, num_states, num_arcs), np.float32)
    out_stay, out_start, out_final = (np.full((batch, num_states), -np.inf, np.float32) for _ in range(3))
    for b, emissions_b in enumerate(emissions):
        n = len(emissions_b)
        out_emissions[b, :n] = emissions_b
        out_stay[b, :n] = _weights(stays[b], n, 0.0)
        out_start[b, :n] = _weights(start[b], n, -np.inf)
        out_final[b, :n] = _weights(final[b], n, -np.inf)
        for target, sources in enumerate(into[b]):
            for k, (source, weight) in enumerate(sources):
                out_arcs[b, target, k], out_weights[b, target, k] = source, weight
    return Graph(*(jnp.asarray(a) for a in (out_emissions, out_arcs, out_weights, out_stay, out_start, out_final)))
