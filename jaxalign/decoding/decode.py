"""Decoders: sub-state-aware greedy (k >= 1 rows per symbol) and CTC prefix beam search.

Plain greedy and CTC best path are `jaxalign.greedy_decode` (with `blank_id` for CTC).
"""

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.align.simple import left_pack


@functools.partial(jax.jit, static_argnames=("k", "blank_id"))
def substate_greedy_decode(log_probs_BxTxC, logit_paddings_BxT, *, k: int, blank_id: int | None = None):
    """Argmax per frame; class c is sub-state c % k of symbol c // k. A symbol is emitted each time
    the frames enter its first sub-state from any other state, so with k >= 2 "3 3" (0 1 0 1) is told
    apart from "3" (0 0 1 1); with k = 1 this is plain greedy (merge repeats). Blank frames emit nothing.

    Returns (labels (B, T) int32, label_paddings (B, T) float32), labels left-aligned, -1 after.
    """
    state_BxT = jnp.argmax(log_probs_BxTxC, axis=2).astype(jnp.int32)
    valid_BxT = jnp.arange(state_BxT.shape[1])[None, :] < jnp.sum(logit_paddings_BxT == 0, axis=1)[:, None]
    prev_BxT = jnp.pad(state_BxT[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
    emit_BxT = valid_BxT & (state_BxT % k == 0) & (state_BxT != prev_BxT)
    if blank_id is not None:
        emit_BxT &= state_BxT != blank_id
    return left_pack(state_BxT // k, emit_BxT)


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
