"""Encoder-decoder nets that emit a symbol sequence and then an end symbol (the notes' a posteriori
sequence-to-sequence and one-to-many setups).

`EncoderDecoder` pairs an encoder with one `Decoder`, a GRU scanned over output positions
(`lax.scan`). The decoder's vocabulary is the C symbols plus an end symbol (output id C); its input
at position i is the embedding of the previous symbol (a start symbol, input id C, at i = 0) and,
with attention, a context vector over the encoder states. Two encoders:
- `SequenceModel` (the recurrent stack of `jaxalign.models.rnn`): its per-frame outputs are the
  memory the attention reads; the decoder starts from tanh(W mean of the memory over valid frames).
- `VectorEncoder`: the sequence resampled to a fixed number of frames, seen as one image (features
  x frames) through a small convolutional stack, flattened into one vector, then an MLP; with no
  attention the decoder starts from it and is fed it at every step (one-to-many).

Attention (`Attention`) is additive (Bahdanau et al. 2015): e_it = v . tanh(W s_{i-1} + U h_t), and
with `location` also + F (conv * a_{i-1})_t, a convolution over the previous step's weights
(Chorowski et al. 2015). Padded frames get weight exactly 0.

Decoding runs for a fixed number of steps (`max_len` symbols + the end), so it jits once per shape:
`greedy` (argmax each step) and `beam` (the `width` best prefixes by summed log-probability; width 1
is greedy). After its end symbol a sequence keeps emitting the end symbol.
"""

import jax
import jax.numpy as jnp
from flax import nnx

NEG = -1e30  # masked attention energies: exp underflows to exactly 0 without an inf in the gradient


def lengths_of(paddings_BxT):
    return jnp.sum(1 - paddings_BxT.astype(jnp.int32), axis=1)


def resample_frames(features_BxTxF, paddings_BxT, num_frames: int):
    """(B, num_frames, F): each sequence's valid frames linearly interpolated to `num_frames` evenly
    spaced points from its first to its last frame (a 1-frame sequence is repeated)."""
    T = features_BxTxF.shape[1]
    last_B = jnp.maximum(lengths_of(paddings_BxT) - 1, 0).astype(jnp.float32)
    src_BxN = jnp.linspace(0.0, 1.0, num_frames)[None, :] * last_B[:, None]
    lo_BxN = jnp.clip(jnp.floor(src_BxN).astype(jnp.int32), 0, T - 1)
    hi_BxN = jnp.minimum(lo_BxN + 1, last_B[:, None].astype(jnp.int32))
    frac_BxNx1 = (src_BxN - lo_BxN)[..., None]
    lo = jnp.take_along_axis(features_BxTxF, lo_BxN[..., None], axis=1)
    hi = jnp.take_along_axis(features_BxTxF, hi_BxN[..., None], axis=1)
    return (1 - frac_BxNx1) * lo + frac_BxNx1 * hi


class VectorEncoder(nnx.Module):
    """features (B, T, F) + paddings -> one vector (B, hidden): resample to `num_frames` frames, read
    the (F, num_frames) image with one 3x3 conv + ReLU + 2x2 max-pool per entry of `conv_channels`
    (none: the raw image), flatten, then `num_layers` ReLU layers of `hidden` units with dropout."""

    def __init__(
        self,
        in_features: int,
        *,
        num_frames: int,
        conv_channels: list[int],
        hidden: int,
        num_layers: int,
        dropout: float,
        rngs,
    ):
        self.num_frames = num_frames
        self.convs = nnx.List()
        channels, rows, cols = 1, in_features, num_frames
        for out in conv_channels:
            self.convs.append(nnx.Conv(channels, out, (3, 3), padding="SAME", rngs=rngs))
            channels, rows, cols = out, -(-rows // 2), -(-cols // 2)  # SAME pooling: ceil
        self.layers = nnx.List()
        width = channels * rows * cols
        for _ in range(num_layers):
            self.layers.append(nnx.Linear(width, hidden, rngs=rngs))
            width = hidden
        self.dropout = nnx.Dropout(dropout)
        self.out_features = width

    def __call__(self, features_BxTxF, paddings_BxT, *, dropout_key=None):
        B = features_BxTxF.shape[0]
        x = resample_frames(features_BxTxF, paddings_BxT, self.num_frames)
        x_BxFxNx1 = jnp.swapaxes(x, 1, 2)[..., None]
        for conv in self.convs:
            x_BxFxNx1 = nnx.max_pool(nnx.relu(conv(x_BxFxNx1)), (2, 2), strides=(2, 2), padding="SAME")
        x = x_BxFxNx1.reshape(B, -1)
        for i, layer in enumerate(self.layers):
            x = nnx.relu(layer(x))
            if dropout_key is not None and self.dropout.rate > 0:
                x = self.dropout(x, deterministic=False, rngs=jax.random.fold_in(dropout_key, i))
        return x


class Attention(nnx.Module):
    """Additive attention over a memory (B, T, E); `location`: plus a convolution of `filters`
    channels, `width` frames wide, over the previous weights."""

    def __init__(self, query_dim: int, memory_dim: int, dim: int, *, location: bool, filters: int, width: int, rngs):
        self.query = nnx.Linear(query_dim, dim, use_bias=False, rngs=rngs)
        self.key = nnx.Linear(memory_dim, dim, rngs=rngs)
        self.energy = nnx.Linear(dim, 1, use_bias=False, rngs=rngs)
        self.conv = nnx.Conv(1, filters, (width,), padding="SAME", use_bias=False, rngs=rngs) if location else None
        self.location = nnx.Linear(filters, dim, use_bias=False, rngs=rngs) if location else None

    def __call__(self, state_BxH, keys_BxTxA, memory_BxTxE, valid_BxT, previous_BxT):
        """(context (B, E), weights (B, T)) for decoder state s_{i-1} and the previous weights."""
        e_BxTxA = keys_BxTxA + self.query(state_BxH)[:, None, :]
        if self.conv is not None:
            e_BxTxA = e_BxTxA + self.location(self.conv(previous_BxT[..., None]))
        energy_BxT = jnp.where(valid_BxT, self.energy(jnp.tanh(e_BxTxA))[..., 0], NEG)
        weights_BxT = jnp.where(valid_BxT, jax.nn.softmax(energy_BxT, axis=-1), 0.0)
        return jnp.einsum("bt,bte->be", weights_BxT, memory_BxTxE), weights_BxT


class Decoder(nnx.Module):
    """One output step: (state, previous weights), previous symbol -> new carry, logits (B, C + 1)."""

    def __init__(
        self,
        num_classes: int,
        memory_dim: int,
        *,
        hidden: int,
        embedding: int,
        attention: Attention | None,
        rngs,
    ):
        self.num_classes = num_classes  # output id num_classes = end; input id num_classes = start
        self.embed = nnx.Embed(num_classes + 1, embedding, rngs=rngs)
        self.attention = attention
        # memory_dim: the attention context's size, or without attention the encoder vector's
        self.cell = nnx.GRUCell(embedding + memory_dim, hidden, rngs=rngs)
        self.readout = nnx.Linear(hidden + memory_dim + embedding, hidden, rngs=rngs)
        self.head = nnx.Linear(hidden, num_classes + 1, rngs=rngs)

    def __call__(self, memory, carry, symbol_B):
        state_BxH, previous_BxT = carry
        emb_BxD = self.embed(symbol_B)
        if self.attention is not None:
            memory_BxTxE, keys_BxTxA, valid_BxT = memory
            context_BxE, weights_BxT = self.attention(state_BxH, keys_BxTxA, memory_BxTxE, valid_BxT, previous_BxT)
        else:  # one vector (B, E), the same context at every step (Cho et al. 2014)
            context_BxE, weights_BxT = memory, previous_BxT
        x = jnp.concatenate([emb_BxD, context_BxE], axis=-1)
        state_BxH, _ = self.cell(state_BxH, x)
        logits = self.head(jnp.tanh(self.readout(jnp.concatenate([state_BxH, context_BxE, emb_BxD], axis=-1))))
        return (state_BxH, weights_BxT), logits


class EncoderDecoder(nnx.Module):
    """An encoder (`SequenceModel` with attention, or `VectorEncoder` without) and a `Decoder`."""

    def __init__(self, encoder, decoder: Decoder, encoder_dim: int, *, rngs):
        self.encoder, self.decoder = encoder, decoder
        self.init_state = nnx.Linear(encoder_dim, decoder.cell.hidden_features, rngs=rngs)

    @property
    def num_classes(self) -> int:
        return self.decoder.num_classes

    @property
    def end_id(self) -> int:
        return self.decoder.num_classes

    def encode(self, features_BxTxF, paddings_BxT, dropout_key=None):
        """(memory for the decoder steps: (memory, keys, valid) with attention, else the vector (B, E);
        initial carry)."""
        valid_BxT = paddings_BxT == 0
        first_BxT = (jnp.arange(paddings_BxT.shape[1]) == 0)[None, :] & valid_BxT  # a_0: on the first frame
        first_BxT = first_BxT.astype(jnp.float32)
        if self.decoder.attention is None:
            summary = self.encoder(features_BxTxF, paddings_BxT, dropout_key=dropout_key)
            return summary, (jnp.tanh(self.init_state(summary)), first_BxT)
        memory_BxTxE = self.encoder(features_BxTxF, paddings_BxT, dropout_key=dropout_key).astype(jnp.float32)
        mean_BxE = jnp.sum(jnp.where(valid_BxT[..., None], memory_BxTxE, 0.0), axis=1) / jnp.maximum(
            jnp.sum(valid_BxT, axis=1, keepdims=True), 1
        )
        keys_BxTxA = self.decoder.attention.key(memory_BxTxE)
        return (memory_BxTxE, keys_BxTxA, valid_BxT), (jnp.tanh(self.init_state(mean_BxE)), first_BxT)

    def teacher_forced(self, features_BxTxF, paddings_BxT, labels_BxL, label_paddings_BxL, *, dropout_key=None):
        """Logits (B, L + 1, C + 1) and attention weights (B, L + 1, T) with the decoder fed the true
        previous symbols: position i predicts labels[i] for i < L_b and the end symbol at i = L_b."""
        memory, carry = self.encode(features_BxTxF, paddings_BxT, dropout_key)
        B = labels_BxL.shape[0]
        previous_BxL1 = jnp.concatenate(
            [jnp.full((B, 1), self.num_classes, jnp.int32), jnp.where(label_paddings_BxL > 0, 0, labels_BxL)], axis=1
        )

        def step(carry, symbol_B):
            carry, logits = self.decoder(memory, carry, symbol_B)
            return carry, (logits, carry[1])

        _, (logits_LxBxV, weights_LxBxT) = jax.lax.scan(step, carry, previous_BxL1.T)
        return jnp.swapaxes(logits_LxBxV, 0, 1), jnp.swapaxes(weights_LxBxT, 0, 1)

    def greedy(self, features_BxTxF, paddings_BxT, max_len: int):
        """(symbols (B, max_len + 1), with the end id after the last symbol; attention (B, max_len + 1, T))."""
        memory, carry = self.encode(features_BxTxF, paddings_BxT)
        B = features_BxTxF.shape[0]

        def step(state, _):
            carry, symbol_B, done_B = state
            carry, logits = self.decoder(memory, carry, symbol_B)
            symbol_B = jnp.where(done_B, self.end_id, jnp.argmax(logits, axis=-1).astype(jnp.int32))
            return (carry, symbol_B, done_B | (symbol_B == self.end_id)), (symbol_B, carry[1])

        start = (carry, jnp.full((B,), self.num_classes, jnp.int32), jnp.zeros((B,), bool))
        _, (symbols_MxB, weights_MxBxT) = jax.lax.scan(step, start, None, length=max_len + 1)
        return symbols_MxB.T, jnp.swapaxes(weights_MxBxT, 0, 1)

    def beam(self, features_BxTxF, paddings_BxT, max_len: int, width: int):
        """symbols (B, max_len + 1) of the best of `width` beams by total log-probability (a beam
        that has ended keeps its score and emits only the end symbol)."""
        memory, carry = self.encode(features_BxTxF, paddings_BxT)
        B, K, V = features_BxTxF.shape[0], width, self.num_classes + 1

        def tile(x):  # (B, ...) -> (B * K, ...), beam-major within each example
            return jnp.repeat(x, K, axis=0)

        memory = jax.tree.map(tile, memory)
        carry = jax.tree.map(tile, carry)
        end_only_V = jnp.where(jnp.arange(V) == self.end_id, 0.0, -jnp.inf)

        def step(state, t):
            carry, symbol_BK, done_BxK, score_BxK, history_BxKxM = state
            carry, logits = self.decoder(memory, carry, symbol_BK)
            log_p_BxKxV = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1).reshape(B, K, V)
            log_p_BxKxV = jnp.where(done_BxK[..., None], end_only_V, log_p_BxKxV)
            score_BxKV = (score_BxK[..., None] + log_p_BxKxV).reshape(B, K * V)
            score_BxK, index_BxK = jax.lax.top_k(score_BxKV, K)
            parent_BxK, symbol_BxK = index_BxK // V, (index_BxK % V).astype(jnp.int32)
            flat_parent = (parent_BxK + K * jnp.arange(B)[:, None]).reshape(-1)
            carry = jax.tree.map(lambda x: x[flat_parent], carry)
            history_BxKxM = jnp.take_along_axis(history_BxKxM, parent_BxK[..., None], axis=1)
            history_BxKxM = history_BxKxM.at[:, :, t].set(symbol_BxK)
            done_BxK = jnp.take_along_axis(done_BxK, parent_BxK, axis=1) | (symbol_BxK == self.end_id)
            return (carry, symbol_BxK.reshape(-1), done_BxK, score_BxK, history_BxKxM), None

        score_BxK = jnp.where(jnp.arange(K) == 0, 0.0, -jnp.inf)[None, :].repeat(B, axis=0)
        start = (
            carry,
            jnp.full((B * K,), self.num_classes, jnp.int32),
            jnp.zeros((B, K), bool),
            score_BxK,
            jnp.full((B, K, max_len + 1), self.end_id, jnp.int32),
        )
        (_, _, _, score_BxK, history_BxKxM), _ = jax.lax.scan(step, start, jnp.arange(max_len + 1))
        best_B = jnp.argmax(score_BxK, axis=1)
        return jnp.take_along_axis(history_BxKxM, best_B[:, None, None], axis=1)[:, 0]
