"""The recurrent layers against nnx's own cells scanned by nnx.RNN (values and gradients), and the
padding, unroll and bfloat16 behaviour of SequenceModel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxalign.models import SequenceModel
from jaxalign.models.rnn import GATES, Recurrent, _forward, _recurrence

LENGTHS = np.array([7, 3, 1, 5])  # B=4 sequences padded to T=7
NNX_CELLS = {"simple": nnx.SimpleCell, "gru": nnx.GRUCell, "lstm": nnx.LSTMCell}


def random_params(layer: Recurrent, seed: int, *, hidden_bias: bool = False):
    """Every parameter random (biases too), so the reference test sees each one; b_hn stays zero
    unless asked, since nnx.GRUCell has none."""
    graphdef, state = nnx.split(layer)
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    leaves = [0.5 * jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves)]
    layer = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))
    if layer.hidden_bias is not None and not hidden_bias:
        layer.hidden_bias[...] = jnp.zeros_like(layer.hidden_bias[...])
    return layer


def nnx_cell(layer: Recurrent, d: int):
    """An nnx cell holding direction d's weights of `layer`."""
    kind, hidden = layer.kind, layer.hidden
    width = GATES[kind] * hidden
    kernel = layer.input.kernel[...][:, d * width : (d + 1) * width]
    bias = layer.input.bias[...][d * width : (d + 1) * width]
    recurrent = layer.recurrent_kernel[...][d]
    cell = NNX_CELLS[kind](kernel.shape[0], hidden, rngs=nnx.Rngs(0))
    if kind == "lstm":  # separate (H)-wide Linears, gates i f g o; nnx puts the bias on the hidden side
        for name, k, r, b in zip(
            ("i", "f", "g", "o"), jnp.split(kernel, 4, 1), jnp.split(recurrent, 4, 1), jnp.split(bias, 4)
        ):
            getattr(cell, "if_" if name == "f" else "i" + name).kernel[...] = k
            getattr(cell, "h" + name).kernel[...] = r
            getattr(cell, "h" + name).bias[...] = b
    else:
        cell.dense_i.kernel[...] = kernel
        cell.dense_i.bias[...] = bias
        cell.dense_h.kernel[...] = recurrent
    return cell


def reference(layer: Recurrent, x_TxBxF, lengths_B):
    """The layer computed by nnx.RNN over nnx cells (backward: reverse=True, keep_order=True)."""
    x_BxTxF = jnp.swapaxes(x_TxBxF, 0, 1)
    out = [nnx.RNN(nnx_cell(layer, 0), rngs=False)(x_BxTxF, seq_lengths=lengths_B, rngs=nnx.Rngs(0))]
    if layer.directions == 2:
        backward = nnx.RNN(nnx_cell(layer, 1), reverse=True, keep_order=True, rngs=False)
        out.append(backward(x_BxTxF, seq_lengths=lengths_B, rngs=nnx.Rngs(0)))
    return jnp.swapaxes(jnp.concatenate(out, axis=-1), 0, 1)


def valid_sum(y_TxBxH, lengths_B, seed=3):
    """A random linear function of the valid outputs only (padded ones are unspecified)."""
    valid_TxB = jnp.arange(y_TxBxH.shape[0])[:, None] < lengths_B
    weights = jax.random.normal(jax.random.key(seed), y_TxBxH.shape)
    return jnp.sum(jnp.where(valid_TxB[:, :, None], weights * y_TxBxH, 0.0))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["simple", "gru", "lstm"])
@pytest.mark.parametrize("directions", [1, 2])
def test_recurrent_layer_equals_nnx_rnn_over_nnx_cells(kind, directions):
    layer = random_params(Recurrent(kind, 5, 6, directions=directions, rngs=nnx.Rngs(0)), seed=1)
    lengths = jnp.asarray(LENGTHS)
    x = jax.random.normal(jax.random.key(2), (7, len(LENGTHS), 5))
    valid = (np.arange(7)[:, None] < LENGTHS)[:, :, None]
    ours, ref = layer(x, lengths), reference(layer, x, lengths)
    np.testing.assert_allclose(np.where(valid, ours, 0), np.where(valid, ref, 0), rtol=1e-5, atol=1e-5)

    graphdef, state = nnx.split(layer)
    loss = lambda fn: lambda state, x: valid_sum(fn(nnx.merge(graphdef, state), x, lengths), lengths)
    grads = jax.grad(loss(lambda m, x, n: m(x, n, unroll=3)), argnums=(0, 1))(state, x)
    ref_grads = jax.grad(loss(reference), argnums=(0, 1))(state, x)
    for (path, g), r in zip(jax.tree.leaves_with_path(grads), jax.tree.leaves(ref_grads)):
        if "hidden_bias" not in jax.tree_util.keystr(path):  # b_hn: the reference has none
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5, err_msg=jax.tree_util.keystr(path))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["simple", "gru", "lstm"])
def test_hand_written_vjp_equals_autodiff_of_the_scan(kind):
    """`_recurrence`'s backward scan against JAX's own differentiation of the forward scan, with
    every input random (the recurrent bias too: nnx's cells have no b_hn to compare with)."""
    T, D, B, H, G = 5, 2, 3, 4, GATES[kind]
    keys = jax.random.split(jax.random.key(7), G + 3)
    xs = tuple(jax.random.normal(k, (T, D, B, H)) for k in keys[:G])
    w_hh = 0.5 * jax.random.normal(keys[G], (D, H, G * H))
    b_hh = jax.random.normal(keys[G + 1], (D, 1, G * H))
    weights = jax.random.normal(keys[G + 2], (T, D, B, H))
    loss = lambda fn: lambda *args: jnp.sum(weights * fn(*args))
    ours = jax.grad(loss(lambda *a: _recurrence(kind, 2, jnp.float32, *a)), argnums=(0, 1, 2))(xs, w_hh, b_hh)
    autodiff = jax.grad(loss(lambda *a: _forward(kind, 1, jnp.float32, *a)[0]), argnums=(0, 1, 2))(xs, w_hh, b_hh)
    for g, r in zip(jax.tree.leaves(ours), jax.tree.leaves(autodiff)):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_gru_hidden_bias_sits_inside_the_reset_gate():
    """b_hn (zero in nnx.GRUCell, which has none) against a NumPy loop of the GRU equations."""
    layer = random_params(Recurrent("gru", 3, 4, directions=1, rngs=nnx.Rngs(0)), seed=4, hidden_bias=True)
    x = np.asarray(jax.random.normal(jax.random.key(5), (6, 2, 3)))
    W, b = np.asarray(layer.input.kernel[...]), np.asarray(layer.input.bias[...])
    U, b_hn = np.asarray(layer.recurrent_kernel[...][0]), np.asarray(layer.hidden_bias[...][0])
    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    h, expected = np.zeros((2, 4)), []
    for x_t in x:
        xr, xz, xn = np.split(x_t @ W + b, 3, axis=-1)
        hr, hz, hn = np.split(h @ U, 3, axis=-1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        h = (1 - z) * np.tanh(xn + r * (hn + b_hn)) + z * h
        expected.append(h)
    np.testing.assert_allclose(layer(jnp.asarray(x), jnp.array([6, 6])), np.stack(expected), rtol=1e-5, atol=1e-5)


def batch_with_garbage(seed=0):
    paddings = (np.arange(7)[None, :] >= LENGTHS[:, None]).astype(np.float32)
    features = np.asarray(jax.random.normal(jax.random.key(seed), (len(LENGTHS), 7, 5)))
    garbage = np.where(paddings[:, :, None] > 0, 1e3 * np.random.default_rng(seed).standard_normal(features.shape), 0.0)
    return (
        jnp.asarray(features * (1 - paddings[:, :, None])),
        jnp.asarray(features * 0 + garbage),
        jnp.asarray(paddings),
    )


def model_kwargs(**changes) -> dict:
    """SequenceModel's keywords for a small 2-layer bidirectional GRU, with `changes`."""
    kwargs = dict(
        kind="gru", hidden=8, num_layers=2, bidirectional=True, dropout=0.0, unroll=1, compute_dtype="float32"
    )
    return {**kwargs, **changes}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["simple", "gru", "lstm"])
def test_padded_frames_do_not_reach_valid_outputs_or_gradients(kind):
    model = SequenceModel(5, 4, **model_kwargs(kind=kind), rngs=nnx.Rngs(0))
    clean, garbage, paddings = batch_with_garbage()
    graphdef, state = nnx.split(model)
    valid = (paddings == 0)[:, :, None]

    def loss(state, features):
        logits = nnx.merge(graphdef, state)(features, paddings)
        return jnp.sum(jnp.where(valid, jnp.tanh(logits), 0.0)), logits

    (value, logits), grads = jax.value_and_grad(loss, has_aux=True)(state, clean)
    (value_g, logits_g), grads_g = jax.value_and_grad(loss, has_aux=True)(state, clean + garbage)
    np.testing.assert_allclose(np.where(valid, logits, 0), np.where(valid, logits_g, 0), rtol=1e-6, atol=1e-6)
    for g, h in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_g)):
        np.testing.assert_allclose(g, h, rtol=1e-5, atol=1e-6)


def test_unroll_and_bfloat16_options():
    clean, _, paddings = batch_with_garbage()
    valid = np.asarray(paddings == 0)[:, :, None]
    logits = {}
    for unroll, dtype in ((1, "float32"), (4, "float32"), (1, "bfloat16")):
        model = SequenceModel(5, 4, **model_kwargs(unroll=unroll, compute_dtype=dtype), rngs=nnx.Rngs(0))
        logits[unroll, dtype] = np.where(valid, model(clean, paddings), 0)
    assert logits[1, "bfloat16"].dtype == np.float32
    np.testing.assert_allclose(logits[4, "float32"], logits[1, "float32"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(logits[1, "bfloat16"], logits[1, "float32"], atol=5e-2)
    with pytest.raises(ValueError, match="compute_dtype"):
        SequenceModel(5, 4, **model_kwargs(compute_dtype="float16"), rngs=nnx.Rngs(0))
