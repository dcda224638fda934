"""A frame-local aligner: an MLP that sees each frame with `context` neighbours on each side and
nothing else (bounded look-back and look-ahead).

A bidirectional net trained on its own Viterbi path can move every boundary a few frames without
changing its loss, because it sees the whole sequence; a net that sees +-w frames cannot shift a
label further than w frames from the acoustics that carry it. With `align.aligner_context=w`, this
net supplies the per-step Viterbi targets (and learns from them), and the sequence model learns
from the same targets: the hybrid recipe in which a local model (there a GMM) aligns for the network.
"""

import jax
import jax.numpy as jnp
from flax import nnx


class LocalAligner(nnx.Module):
    """features (B, T, F) + paddings (B, T) -> logits (B, T, num_outputs) from frames t-w .. t+w."""

    def __init__(self, in_features: int, num_outputs: int, *, context: int, hidden: int, rngs: nnx.Rngs):
        self.context = context
        self.hidden = nnx.Linear(in_features * (2 * context + 1), hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, num_outputs, rngs=rngs)

    def __call__(self, features_BxTxF, paddings_BxT):
        w = self.context
        x_BxTxF = jnp.where(paddings_BxT[..., None] > 0, 0.0, features_BxTxF)
        padded = jnp.pad(x_BxTxF, ((0, 0), (w, w), (0, 0)))
        num_frames = features_BxTxF.shape[1]
        window_BxTxWF = jnp.concatenate([padded[:, i : i + num_frames] for i in range(2 * w + 1)], axis=-1)
        return self.out(jax.nn.relu(self.hidden(window_BxTxWF)))


class WithLocalAligner(nnx.Module):
    """The sequence model plus a `LocalAligner`; calling it gives the sequence model's logits."""

    def __init__(self, model: nnx.Module, aligner: LocalAligner):
        self.model, self.aligner = model, aligner

    def __call__(self, features_BxTxF, paddings_BxT, *, dropout_key=None):
        return self.model(features_BxTxF, paddings_BxT, dropout_key=dropout_key)

    def aligner_logits(self, features_BxTxF, paddings_BxT):
        return self.aligner(features_BxTxF, paddings_BxT)
