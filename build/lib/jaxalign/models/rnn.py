"""Scan-based recurrent nets in Flax NNX: Elman/GRU/LSTM cells, stacked, optionally bidirectional,
plus a per-frame MLP for the one-to-one setup. Output: per-frame logits over the classes."""

import jax
import jax.numpy as jnp
from flax import nnx

CELLS = {"simple": nnx.SimpleCell, "gru": nnx.GRUCell, "lstm": nnx.LSTMCell}
KINDS = tuple(CELLS) + ("mlp",)


class SequenceModel(nnx.Module):
    """features (B, T, F) + paddings (B, T) -> logits (B, T, num_outputs).

    kind: "simple", "gru", "lstm" (recurrent, `nnx.RNN` scans over frames with per-sequence
    lengths, so a backward direction starts at each sequence's own last frame) or "mlp" (no memory).
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        *,
        kind: str = "gru",
        hidden: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        rngs: nnx.Rngs,
    ):
        if kind not in KINDS:
            raise ValueError(f"model.kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.layers = nnx.List()
        width = in_features
        for _ in range(num_layers):
            if kind == "mlp":
                self.layers.append(nnx.Linear(width, hidden, rngs=rngs))
                width = hidden
                continue
            forward = nnx.RNN(CELLS[kind](width, hidden, rngs=rngs), rngs=False)
            if bidirectional:
                backward = nnx.RNN(CELLS[kind](width, hidden, rngs=rngs), reverse=True, keep_order=True, rngs=False)
                self.layers.append(nnx.Bidirectional(forward, backward, rngs=False))
                width = 2 * hidden
            else:
                self.layers.append(forward)
                width = hidden
        self.dropout = nnx.Dropout(dropout)
        self.head = nnx.Linear(width, num_outputs, rngs=rngs)

    def __call__(self, features_BxTxF, paddings_BxT, *, dropout_key: jax.Array | None = None):
        lengths_B = jnp.sum(1 - paddings_BxT.astype(jnp.int32), axis=1)
        x = features_BxTxF
        for i, layer in enumerate(self.layers):
            if self.kind == "mlp":
                x = nnx.relu(layer(x))
            else:  # the carry starts at zeros (the cells' default carry_init); the key is unused
                x = layer(x, seq_lengths=lengths_B, rngs=nnx.Rngs(0))
            if dropout_key is not None and self.dropout.rate > 0:
                x = self.dropout(x, deterministic=False, rngs=jax.random.fold_in(dropout_key, i))
        return self.head(x)
