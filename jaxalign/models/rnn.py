"""Scan-based recurrent nets in Flax NNX: Elman/GRU/LSTM layers, stacked, optionally bidirectional,
plus a per-frame MLP for the one-to-one setup. Output: per-frame logits over the classes.

A recurrent layer projects every frame's input for all gates and both directions in one matmul
before the scan, and one `lax.scan` carries both directions' states stacked, so the loop body is
only the recurrent matmul h @ W_hh and the gates; its gradient is a second scan written by hand
(`_recurrence`). The backward direction reads each sequence reversed within its own length, so it
starts at that sequence's last valid frame; in both reading orders padded frames come after the
valid ones and never reach a valid output.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from jaxalign.align.types import scan_unroll

GATES = {"simple": 1, "gru": 3, "lstm": 4}  # H-wide blocks of the projections, in nnx's cell order
KINDS = tuple(GATES) + ("mlp",)
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# GPUs gain from unrolling the recurrence (an H100 trial: 1.4x faster train step at 8); on a 2-core
# CPU the train step was no faster at 2 and about 15 % slower at 4 (`bench_train_step.py --unroll N`).
RNN_UNROLL_ON_ACCELERATORS = 8


def _simple(h, xp, hp_DxBxG):
    h = jnp.tanh(xp[0] + hp_DxBxG)
    return h, h


def _gru(h, xp, hp_DxBxG):
    """nnx.GRUCell's math plus the b_hn of its docstring and of cuDNN (flax 0.12's code has none):
    the n block of hp carries b_hn, so the reset gate scales (W_hn h + b_hn)."""
    (xr, xz, xn), (hr, hz, hn) = xp, jnp.split(hp_DxBxG, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h = (1.0 - z) * n + z * h
    return h, h


def _lstm(carry, xp, hp_DxBxG):
    c, h = carry
    i, f, g, o = (x + y for x, y in zip(xp, jnp.split(hp_DxBxG, 4, axis=-1)))
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h


# (carry, input projections per gate (D, B, H) each, recurrent projection (D, B, G*H)) -> (carry, h)
CELLS = {"simple": _simple, "gru": _gru, "lstm": _lstm}


def _hidden(kind, carry):
    return carry[1] if kind == "lstm" else carry


def _matmul(subscripts, a, b, dtype):
    """einsum in `dtype` (float32 or bfloat16) with float32 results."""
    return jnp.einsum(subscripts, a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def _forward(kind, unroll, dtype, xs, w_hh_DxHxG, b_hh_Dx1xG):
    """The scan; returns (h (T, D, B, H), residuals for `_backward`)."""
    D, H, _ = w_hh_DxHxG.shape
    zeros = jnp.zeros((D, xs[0].shape[2], H), jnp.float32)
    carry = (zeros, zeros) if kind == "lstm" else zeros

    def step(carry, xp):
        hp_DxBxG = _matmul("dbh,dhg->dbg", _hidden(kind, carry), w_hh_DxHxG, dtype) + b_hh_Dx1xG
        new, h = CELLS[kind](carry, xp, hp_DxBxG)
        return new, (new, hp_DxBxG)

    _, (carries, hp_TxDxBxG) = jax.lax.scan(step, carry, xs, unroll=unroll)
    previous = jax.tree.map(lambda c0, c: jnp.concatenate([c0[None], c[:-1]]), carry, carries)
    return _hidden(kind, carries), (xs, w_hh_DxHxG, previous, hp_TxDxBxG)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _recurrence(kind, unroll, dtype, xs, w_hh_DxHxG, b_hh_Dx1xG):
    """Both directions' recurrences over time-major gate inputs `xs` (G arrays (T, D, B, H)).

    A hand-made VJP, like cuDNN's: the backward scan reverts only the cell (`jax.vjp`) and the
    h @ W_hh product each step; W_hh's gradient is one matmul over all frames after the loop
    (autodiff would accumulate it frame by frame inside the loop).
    """
    return _forward(kind, unroll, dtype, xs, w_hh_DxHxG, b_hh_Dx1xG)[0]


def _backward(kind, unroll, dtype, residuals, dh_TxDxBxH):
    xs, w_hh_DxHxG, previous, hp_TxDxBxG = residuals

    def step(dcarry, frame):
        xp, hp_DxBxG, carry, dh_DxBxH = frame
        _, cell_vjp = jax.vjp(CELLS[kind], carry, xp, hp_DxBxG)
        dcarry, dxp, dhp_DxBxG = cell_vjp((dcarry, dh_DxBxH))
        dh_DxBxH = _matmul("dbg,dhg->dbh", dhp_DxBxG, w_hh_DxHxG, dtype)
        dcarry = (dcarry[0], dcarry[1] + dh_DxBxH) if kind == "lstm" else dcarry + dh_DxBxH
        return dcarry, (dxp, dhp_DxBxG)

    dcarry = jax.tree.map(lambda c: jnp.zeros_like(c[0]), previous)
    _, (dxs, dhp_TxDxBxG) = jax.lax.scan(
        step, dcarry, (xs, hp_TxDxBxG, previous, dh_TxDxBxH), reverse=True, unroll=unroll
    )
    dw_hh_DxHxG = _matmul("tdbh,tdbg->dhg", _hidden(kind, previous), dhp_TxDxBxG, dtype)
    return dxs, dw_hh_DxHxG, jnp.sum(dhp_TxDxBxG, axis=(0, 2))[:, None]


_recurrence.defvjp(lambda *args: _forward(*args), _backward)


@jax.custom_vjp
def reverse_within_lengths(x_TxBxK, lengths_B):
    """Frame t of sequence b goes to frame len_b - 1 - t; padded frames stay.

    A permutation that is its own inverse, so its gradient is the same gather (autodiff would make
    it a scatter-add, which is slow on CPU).
    """
    t_Tx1 = jnp.arange(x_TxBxK.shape[0])[:, None]
    index_TxB = jnp.where(t_Tx1 < lengths_B, lengths_B - 1 - t_Tx1, t_Tx1)
    return jnp.take_along_axis(x_TxBxK, index_TxB[:, :, None], axis=0)


reverse_within_lengths.defvjp(
    lambda x, lengths: (reverse_within_lengths(x, lengths), lengths),
    lambda lengths, g: (reverse_within_lengths(g, lengths), None),
)


def _flip_backward(x_TxBxDxK, lengths_B):
    """Reverses direction 1 (the backward one, where there is one) within each sequence's length."""
    if x_TxBxDxK.shape[2] == 1:
        return x_TxBxDxK
    return jnp.stack([x_TxBxDxK[:, :, 0], reverse_within_lengths(x_TxBxDxK[:, :, 1], lengths_B)], axis=2)


class Recurrent(nnx.Module):
    """One recurrent layer, time-major: x (T, B, F), lengths (B,) -> (T, B, directions * hidden).

    Parameters: `input` (F, D*G*H) kernel and bias (direction-major, then gates as in the nnx cells;
    lecun-normal and zeros like them), `recurrent_kernel` (D, H, G*H) (orthogonal, like them), and
    for the GRU `hidden_bias` (D, 1, H), the b_hn inside the reset gate (zeros).
    """

    def __init__(self, kind: str, in_features: int, hidden: int, *, directions: int, rngs: nnx.Rngs):
        width = GATES[kind] * hidden
        self.kind, self.hidden, self.directions = kind, hidden, directions
        self.input = nnx.Linear(in_features, directions * width, rngs=rngs)
        orthogonal = nnx.initializers.orthogonal()
        self.recurrent_kernel = nnx.Param(
            jnp.stack([orthogonal(rngs.params(), (hidden, width)) for _ in range(directions)])
        )
        self.hidden_bias = nnx.Param(jnp.zeros((directions, 1, hidden))) if kind == "gru" else None

    def __call__(self, x_TxBxF, lengths_B, *, compute_dtype=jnp.float32, unroll: int = 1):
        T, B, _ = x_TxBxF.shape
        D, H = self.directions, self.hidden
        proj_TxBxDG = _matmul("tbf,fg->tbg", x_TxBxF, self.input.kernel[...], compute_dtype) + self.input.bias[...]
        # one array (T, D, B, H) per gate, each direction in its reading order: XLA's CPU loop
        # fusions do not vectorize reads of several slices of one array
        proj_TxBxDxGxH = proj_TxBxDG.reshape(T, B, D, GATES[self.kind], H)
        gates = tuple(
            jnp.swapaxes(_flip_backward(proj_TxBxDxGxH[:, :, :, g], lengths_B), 1, 2) for g in range(GATES[self.kind])
        )
        b_hh_Dx1xG = jnp.zeros((D, 1, GATES[self.kind] * H))
        if self.hidden_bias is not None:  # b_hn, in the n block
            b_hh_Dx1xG = b_hh_Dx1xG.at[:, :, 2 * H :].set(self.hidden_bias[...])
        h_TxDxBxH = _recurrence(self.kind, unroll, compute_dtype, gates, self.recurrent_kernel[...], b_hh_Dx1xG)
        return _flip_backward(jnp.swapaxes(h_TxDxBxH, 1, 2), lengths_B).reshape(T, B, D * H)


class SequenceModel(nnx.Module):
    """features (B, T, F) + paddings (B, T) -> logits (B, T, num_outputs).

    kind: "simple", "gru", "lstm" (recurrent layers, see `Recurrent`) or "mlp" (no memory).
    unroll: scan steps per loop iteration, 0 for the backend's (`scan_unroll`). compute_dtype: "float32" or
    "bfloat16" for the recurrent layers' matmul inputs; carries, gates and logits stay float32.
    """

    def __init__(
        self,
        in_features: int,
        num_outputs: int,
        *,
        kind: str,
        hidden: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        unroll: int,
        compute_dtype: str,
        rngs: nnx.Rngs,
    ):
        if kind not in KINDS:
            raise ValueError(f"model.kind must be one of {KINDS}, got {kind!r}")
        if compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"model.compute_dtype must be one of {tuple(COMPUTE_DTYPES)}, got {compute_dtype!r}")
        self.kind = kind
        self.unroll = scan_unroll(unroll or None, accelerator=RNN_UNROLL_ON_ACCELERATORS)
        self.compute_dtype = compute_dtype
        self.layers = nnx.List()
        width = in_features
        for _ in range(num_layers):
            if kind == "mlp":
                self.layers.append(nnx.Linear(width, hidden, rngs=rngs))
                width = hidden
            else:
                directions = 2 if bidirectional else 1
                self.layers.append(Recurrent(kind, width, hidden, directions=directions, rngs=rngs))
                width = directions * hidden
        self.dropout = nnx.Dropout(dropout)
        self.head = nnx.Linear(width, num_outputs, rngs=rngs)

    def __call__(self, features_BxTxF, paddings_BxT, *, dropout_key: jax.Array | None = None):
        lengths_B = jnp.sum(1 - paddings_BxT.astype(jnp.int32), axis=1)
        x_TxBxF = jnp.swapaxes(features_BxTxF, 0, 1)
        for i, layer in enumerate(self.layers):
            if self.kind == "mlp":
                x_TxBxF = nnx.relu(layer(x_TxBxF))
            else:
                x_TxBxF = layer(
                    x_TxBxF, lengths_B, compute_dtype=COMPUTE_DTYPES[self.compute_dtype], unroll=self.unroll
                )
            if dropout_key is not None and self.dropout.rate > 0:
                x_TxBxF = self.dropout(x_TxBxF, deterministic=False, rngs=jax.random.fold_in(dropout_key, i))
        return jnp.swapaxes(self.head(x_TxBxF), 0, 1)
