"""The notes' divergences: a weighted sum over frames of per-frame cross-entropy, per setup.

- one_to_one / time_sync: the per-frame labels, every valid frame weight 1.
- many_to_one: the sequence label smeared over all frames with per-frame weights (`many_to_one_weights`).
- order_sync: per-frame targets from an alignment of the symbol sequence (see `jaxalign.training`),
  or CTC (`ctc_divergence`, optax's implementation).
"""

import jax.numpy as jnp
import optax


def frame_cross_entropy(log_probs_BxTxC, targets_BxT, weights_BxT):
    """Returns (sum_t,b w * -log p(target), sum w). Targets < 0 count with weight 0."""
    ok_BxT = targets_BxT >= 0
    nll_BxT = -jnp.take_along_axis(log_probs_BxTxC, jnp.maximum(targets_BxT, 0)[..., None], axis=2)[..., 0]
    w_BxT = jnp.where(ok_BxT, weights_BxT, 0.0)
    return jnp.sum(jnp.where(w_BxT > 0, nll_BxT * w_BxT, 0.0)), jnp.sum(w_BxT)


# Raw per-frame weights of many_to_one's smeared label: (frames before the last (B, T), frame index
# (B, T), decay) -> (B, T); `many_to_one_weights` normalises them per sequence.
WEIGHTINGS = {
    "last": lambda to_end, t, decay: (to_end == 0).astype(jnp.float32),
    "uniform": lambda to_end, t, decay: jnp.ones_like(to_end),
    "linear": lambda to_end, t, decay: (t + 1).astype(jnp.float32) + jnp.zeros_like(to_end),
    "exponential": lambda to_end, t, decay: jnp.exp(-decay * jnp.maximum(to_end, 0.0)),
}


def many_to_one_weights(paddings_BxT, scheme: str, *, decay: float):
    """(B, T) per-frame weights of the smeared label, each sequence summing to 1.

    last: only the last valid frame; uniform: all frames equally; linear: ramp 1..T_b towards the end;
    exponential: exp(-decay * frames before the last).
    """
    valid_BxT = paddings_BxT == 0
    len_B = jnp.sum(valid_BxT, axis=1)
    t_BxT = jnp.arange(paddings_BxT.shape[1])[None, :]
    to_end_BxT = (len_B[:, None] - 1 - t_BxT).astype(jnp.float32)
    raw = jnp.where(valid_BxT, WEIGHTINGS[scheme](to_end_BxT, t_BxT, decay), 0.0)
    return raw / jnp.maximum(jnp.sum(raw, axis=1, keepdims=True), 1e-12)


def ctc_divergence(logits_BxTxC, logit_paddings_BxT, labels_BxL, label_paddings_BxL, blank_id: int):
    """optax.ctc_loss per sequence, (B,) (labels on padding are ignored by optax)."""
    safe_BxL = jnp.maximum(labels_BxL, 0)
    return optax.ctc_loss(logits_BxTxC, logit_paddings_BxT, safe_BxL, label_paddings_BxL, blank_id=blank_id)
