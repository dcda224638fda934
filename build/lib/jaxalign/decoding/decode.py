"""Decoders: sub-state-aware greedy and Viterbi (k >= 1 rows per symbol), CTC prefix beam search.

Plain greedy and CTC best path are `jaxalign.greedy_decode` (with `blank_id` for CTC).
"""

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align.simple import left_pack
from jaxalign.align.types import valid_mask


@functools.partial(jax.jit, static_argnames=("k", "blank_id"))
def substate_greedy_decode(log_probs_BxTxC, logit_paddings_BxT, *, k: int, blank_id: int | None = None):
    """Argmax per frame; class c is sub-state c % k of symbol c // k. A symbol is emitted each time
    the frames enter its first sub-state from any other state, so with k >= 2 "3 3" (0 1 0 1) is told
    apart from "3" (0 0 1 1); with k = 1 this is plain greedy (merge repeats). Blank frames emit nothing.

    Returns (labels (B, T) int32, label_paddings (B, T) float32), labels left-aligned, -1 after.
    """
    state_BxT = jnp.argmax(log_probs_BxTxC, axis=2).astype(jnp.int32)
    valid_BxT = valid_mask(logit_paddings_BxT)
    prev_BxT = jnp.pad(state_BxT[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    emit_BxT = valid_BxT & (state_BxT % k == 0) & (state_BxT != prev_BxT)
    if blank_id is not None:
        emit_BxT &= state_BxT != blank_id
    return left_pack(state_BxT // k, emit_BxT)


@functools.partial(jax.jit, static_argnames=("k", "num_symbols"))
def substate_viterbi_decode(log_probs_BxTxC, logit_paddings_BxT, *, k: int, num_symbols: int):
    """Best state path under the sub-state topology, symbols in free order.

    States are (symbol s, sub-state j) = class s*k + j for the first num_symbols*k classes (a blank
    column after them is ignored). A path starts in some sub-state 0, moves 0 -> 1 -> ... -> k-1
    within a symbol (staying any number of frames), may go from any last sub-state to any first
    sub-state (a new symbol, possibly the same one again), and ends in a last sub-state. Every
    symbol thus lasts at least k frames, which removes one-frame flickers that greedy decoding turns
    into insertions. With k = 1 this is plain greedy decoding (ties: no new symbol). Written by hand:
    HMM libraries decode a dense K x K transition, not this sparse left-to-right topology in a scan.

    Returns (labels (B, T) int32, label_paddings (B, T) float32) as from `compress`.
    """
    num_states = num_symbols * k
    lp_BxTxS = log_probs_BxTxC[..., :num_states].astype(jnp.float32)
    lp_BxTxS = jnp.where(jnp.isnan(lp_BxTxS), -jnp.inf, lp_BxTxS)
    sub_S = jnp.arange(num_states) % k
    first_S, last_S = sub_S == 0, sub_S == k - 1
    len_B = jnp.sum(logit_paddings_BxT == 0, axis=1)
    alpha0_BxS = jnp.where(first_S, lp_BxTxS[:, 0], -jnp.inf)

    def forward(alpha_BxS, inputs):
        t, lp_BxS = inputs
        end_BxS = jnp.where(last_S, alpha_BxS, -jnp.inf)
        best_end_B = jnp.max(end_BxS, axis=1)
        within_BxS = jnp.pad(alpha_BxS[:, :-1], ((0, 0), (1, 0)), constant_values=-jnp.inf)
        advance_BxS = jnp.where(first_S, best_end_B[:, None], within_BxS)
        live_B = t < len_B
        take_BxS = (advance_BxS > alpha_BxS) & live_B[:, None]
        new_BxS = jnp.where(take_BxS, advance_BxS, alpha_BxS) + lp_BxS
        alpha_BxS = jnp.where(live_B[:, None], new_BxS, alpha_BxS)
        return alpha_BxS, (take_BxS.astype(jnp.uint8), jnp.argmax(end_BxS, axis=1).astype(jnp.int32))

    frames = (jnp.arange(1, lp_BxTxS.shape[1]), jnp.swapaxes(lp_BxTxS, 0, 1)[1:])
    alpha_BxS, (take_TxBxS, from_end_TxB) = jax.lax.scan(forward, alpha0_BxS, frames)
    final_B = jnp.argmax(jnp.where(last_S, alpha_BxS, -jnp.inf), axis=1).astype(jnp.int32)

    def backward(state_B, inputs):
        take_BxS, from_end_B = inputs
        took_B = jnp.take_along_axis(take_BxS, state_B[:, None], axis=1)[:, 0] > 0
        first_B = state_B % k == 0
        starts_B = took_B & first_B  # this frame begins a new symbol
        prev_B = jnp.where(took_B, jnp.where(first_B, from_end_B, state_B - 1), state_B)
        return prev_B, (prev_B, starts_B)

    _, (prev_TxB, starts_TxB) = jax.lax.scan(backward, final_B, (take_TxBxS, from_end_TxB), reverse=True)
    state_BxT = jnp.concatenate([prev_TxB, final_B[None]], axis=0).T
    starts_BxT = jnp.concatenate([jnp.ones_like(starts_TxB[:1]), starts_TxB], axis=0).T
    valid_BxT = valid_mask(logit_paddings_BxT)
    return left_pack(state_BxT // k, starts_BxT & valid_BxT)


def ctc_prefix_beam_search(log_probs_TxC: np.ndarray, blank_id: int, beam_width: int = 8) -> list[int]:
    """CTC prefix beam search (Graves 2012; Hannun et al. 2014) over one sequence's valid frames.

    Written by hand: optax provides the CTC loss but no decoder. Works in log space in NumPy.
    """
    beams = {(): (0.0, -np.inf)}  # prefix -> (log p ending in blank, log p ending in non-blank)
    for frame in np.asarray(log_probs_TxC, np.float64):
        nxt = collections.defaultdict(lambda: [-np.inf, -np.inf])
        top = np.argsort(frame)[::-1][: beam_width + 1]
        for prefix, (p_b, p_nb) in beams.items():
            total = np.logaddexp(p_b, p_nb)
            entry = nxt[prefix]
            entry[0] = np.logaddexp(entry[0], total + frame[blank_id])
            for c in top:
                if c == blank_id:
                    continue
                p = frame[c]
                if prefix and prefix[-1] == c:
                    entry[1] = np.logaddexp(entry[1], p_nb + p)  # repeat collapses
                    ext = nxt[prefix + (int(c),)]
                    ext[1] = np.logaddexp(ext[1], p_b + p)  # repeat after a blank is a new symbol
                else:
                    ext = nxt[prefix + (int(c),)]
                    ext[1] = np.logaddexp(ext[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: np.logaddexp(*kv[1]), reverse=True)[:beam_width]
        beams = {k: tuple(v) for k, v in ranked}
    return list(max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))[0])
