"""seq2seq and one_to_many: the decoder's scans against step-by-step references, decoding, padding,
a reversed task, the checkpoint round trip, and the configurations they refuse."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxalign.aligner import align_file, load_run
from jaxalign.config import ConfigError
from jaxalign.data import Batcher, write_arrays
from jaxalign.data.load import load_splits
from jaxalign.errors import RunError
from jaxalign.models.seq2seq import VectorEncoder
from jaxalign.setups import make_setup
from jaxalign.setups.seq2seq import _end_targets, sequence_log_likelihood
from jaxalign.training import train
from tests.helpers import compose_config, tiny_config

VARIANTS = [("seq2seq", "content"), ("seq2seq", "location"), ("one_to_many", "content")]


def build(setup="seq2seq", attention="content", **sections):
    config = tiny_config(setup, **sections)
    config.setup.attention = attention
    splits = load_splits(config.data)
    s = make_setup(config, splits.train.num_classes)
    model = s.make_model(config, splits.train.feature_dim, nnx.Rngs(0))
    batch = Batcher(splits.train, 8, num_buckets=1).padded_batch(np.arange(8))
    return s, model, batch, splits


@pytest.mark.slow
@pytest.mark.parametrize("setup, attention", VARIANTS)
def test_teacher_forced_log_likelihood_is_the_sum_of_single_steps(setup, attention):
    s, model, batch, _ = build(setup, attention)
    args = (batch["features"], batch["logit_paddings"], batch["labels"], batch["label_paddings"])
    logits, _ = model.teacher_forced(*args)
    targets = _end_targets(jnp.asarray(batch["labels"]), jnp.asarray(batch["label_paddings"]), s.num_classes)
    total, _ = sequence_log_likelihood(logits, targets)

    memory, carry = model.encode(batch["features"], batch["logit_paddings"])
    previous = jnp.full((8,), s.num_classes, jnp.int32)  # the start symbol
    expected = np.zeros(8)
    for i in range(targets.shape[1]):
        carry, step_logits = model.decoder(memory, carry, previous)
        log_p = np.asarray(jax.nn.log_softmax(step_logits))
        t = np.asarray(targets[:, i])
        expected += np.where(t >= 0, log_p[np.arange(8), np.maximum(t, 0)], 0.0)
        previous = jnp.maximum(targets[:, i], 0)  # teacher forcing: the true symbol (unused after the end)
    np.testing.assert_allclose(np.asarray(total), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("setup, attention", VARIANTS)
def test_beam_width_one_is_greedy_and_a_wider_beam_scores_no_worse(setup, attention):
    _, model, batch, _ = build(setup, attention)
    x, pad = batch["features"], batch["logit_paddings"]
    greedy, _ = model.greedy(x, pad, 6)
    np.testing.assert_array_equal(np.asarray(model.beam(x, pad, 6, 1)), np.asarray(greedy))

    def score(symbols):  # log-likelihood of the decoded symbols, end included
        ended = np.cumsum(np.asarray(symbols) == model.end_id, axis=1) > 0
        labels = np.where(ended, 0, symbols)[:, :6]
        label_pad = ended[:, :6].astype(np.float32)
        logits, _ = model.teacher_forced(x, pad, labels, label_pad)
        return np.asarray(sequence_log_likelihood(logits, _end_targets(labels, label_pad, model.end_id))[0])

    assert np.all(score(model.beam(x, pad, 6, 4)) >= score(greedy) - 1e-5)


@pytest.mark.parametrize("attention", ["content", "location"])
def test_attention_sums_to_one_over_valid_frames_and_is_zero_on_padding(attention):
    _, model, batch, _ = build("seq2seq", attention)
    _, weights = model.teacher_forced(
        batch["features"], batch["logit_paddings"], batch["labels"], batch["label_paddings"]
    )
    valid = batch["logit_paddings"] == 0
    assert (~valid).any()  # the batch has padded frames
    np.testing.assert_allclose(np.asarray(weights).sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(np.asarray(weights)[np.broadcast_to(~valid[:, None, :], weights.shape)] == 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("setup, attention", VARIANTS)
def test_a_padded_batch_gives_each_example_its_unpadded_outputs(setup, attention):
    s, model, batch, splits = build(setup, attention)
    predict = jax.jit(lambda b: s.predict(model, b))
    padded = predict(batch)
    for row in range(3):
        i = int(batch["index"][row])
        one = Batcher(splits.train.subset([i]), 1, num_buckets=1, bounds=[len(splits.train.features[i])])
        single = one.padded_batch(np.array([0]))
        out = predict(single)
        n, L = single["features"].shape[1], len(splits.train.labels[i])
        assert n < batch["features"].shape[1] or row > 0
        np.testing.assert_array_equal(np.asarray(out["labels"][0]), np.asarray(padded["labels"][row]))
        if s.aligns:
            np.testing.assert_array_equal(np.asarray(out["positions"][0]), np.asarray(padded["positions"][row, :n]))
            np.testing.assert_allclose(
                np.asarray(out["log_probs"][0, :, :L]), np.asarray(padded["log_probs"][row, :n, :L]), atol=1e-5
            )


def reference_vector(encoder, features_TxF, num_frames):
    """VectorEncoder by loops: np.interp per feature, 3x3 'same' convolutions, ceil 2x2 max-pooling."""
    T, F = features_TxF.shape
    src = np.linspace(0.0, T - 1, num_frames)
    image = np.stack([np.interp(src, np.arange(T), features_TxF[:, f]) for f in range(F)])[..., None]  # F x N x 1
    for conv in encoder.convs:
        kernel, bias = np.asarray(conv.kernel[...]), np.asarray(conv.bias[...])  # (3, 3, Cin, Cout)
        rows, cols, _ = image.shape
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
        out = np.zeros((rows, cols, kernel.shape[-1]))
        for r in range(rows):
            for c in range(cols):
                out[r, c] = np.einsum("ijk,ijkl->l", padded[r : r + 3, c : c + 3], kernel) + bias
        out = np.maximum(out, 0.0)
        image = np.array(
            [[out[r : r + 2, c : c + 2].max(axis=(0, 1)) for c in range(0, cols, 2)] for r in range(0, rows, 2)]
        )
    x = image.reshape(-1)
    for layer in encoder.layers:
        x = np.maximum(x @ np.asarray(layer.kernel[...]) + np.asarray(layer.bias[...]), 0.0)
    return x


@pytest.mark.slow
@pytest.mark.parametrize(
    "feature_dim, num_frames, channels", [(8, 16, [3, 4]), (5, 7, [2]), (1, 3, [2, 2]), (4, 6, [])]
)
def test_the_vector_encoder_matches_a_loop_reference_on_padded_inputs(feature_dim, num_frames, channels):
    encoder = VectorEncoder(
        feature_dim,
        num_frames=num_frames,
        conv_channels=channels,
        hidden=5,
        num_layers=2,
        dropout=0.0,
        rngs=nnx.Rngs(1),
    )
    rng = np.random.default_rng(0)
    lengths = [9, 1, 4]  # a one-frame input is repeated
    features = rng.normal(size=(3, 9, feature_dim)).astype(np.float32)
    paddings = (np.arange(9)[None, :] >= np.array(lengths)[:, None]).astype(np.float32)
    features[paddings > 0] = 1e3  # padded frames must not leak in
    got = np.asarray(encoder(jnp.asarray(features), jnp.asarray(paddings)))
    assert got.shape == (3, encoder.out_features)
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(got[b], reference_vector(encoder, features[b, :n], num_frames), rtol=1e-4, atol=1e-4)


def test_reversed_targets_reverse_the_labels_and_keep_each_frames_symbol():
    forward = load_splits(tiny_config("seq2seq").data).train
    backward = load_splits(tiny_config("seq2seq", data={"target_order": "reversed"}).data).train
    for i in range(5):
        np.testing.assert_array_equal(backward.labels[i], forward.labels[i][::-1])
        np.testing.assert_array_equal(backward.frame_labels(i), forward.frame_labels(i))


@pytest.mark.slow
def test_seq2seq_learns_a_reversed_task_that_order_sync_cannot(tmp_path):
    """Unidirectional encoders on reversed targets: at frame t order_sync must already name a symbol
    it has not seen; seq2seq reads the whole input before it emits anything."""
    sections = {
        "data": {"target_order": "reversed", "num_train": 256, "num_test": 64, "noise": 0.1},
        "trainer": {"steps": 300, "batch_size": 16, "eval_every": 300, "checkpoint_every": 300},
        "optim": {"learning_rate": 1e-2},
    }
    seq2seq = train(tiny_config("seq2seq", model={"hidden": 32}, **sections), tmp_path / "seq2seq")
    order_sync = train(tiny_config("order_sync", model={"hidden": 32}, **sections), tmp_path / "order_sync")
    assert seq2seq["label_error_rate"] <= 0.15
    assert order_sync["label_error_rate"] >= seq2seq["label_error_rate"] + 0.2


@pytest.fixture(scope="module")
def seq2seq_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("s2s") / "run"
    train(tiny_config("seq2seq", trainer={"steps": 6, "eval_every": 6, "checkpoint_every": 6}), run_dir)
    return run_dir


@pytest.mark.slow
def test_round_trip_checkpoint_load_run_decode_and_align(seq2seq_run, tmp_path):
    run = load_run(seq2seq_run)
    test = load_splits(run.config.data).test
    features, labels = test.features[:4], test.labels[:4]
    hyps = run.decode(features)
    assert len(hyps) == 4 and all(all(0 <= s < run.num_classes for s in h) for h in hyps)
    paths = run.align(features, labels)
    for path, x, y in zip(paths, features, labels):
        assert path.shape == (len(x),) and path[0] == 0 and path[-1] == len(y) - 1
        assert np.all(np.diff(path) >= 0) and np.all(np.diff(path) <= 1)  # a monotone path over every row
    # the same decode as evaluation's (one inference path)
    setup, batcher = run.setup, Batcher(test, run.config.trainer.batch_size, num_buckets=1)
    batch = batcher.padded_batch(np.arange(4))
    out = run.evaluate(run.params, batch)
    assert [setup.hypothesis({k: np.asarray(v[r]) for k, v in out.items()}) for r in range(4)] == hyps

    data = tmp_path / "mine.npz"
    write_arrays(data, features=features, labels=labels, alignments=test.alignments[:4], vocab=test.vocab)
    report = align_file(seq2seq_run, data, tmp_path / "out", evaluate=True)
    assert report["aligned"] == [0, 1, 2, 3] and "alignment_accuracy" in report["metrics"]
    saved = np.load(tmp_path / "out" / "alignments.npz")
    np.testing.assert_array_equal(saved["seq_00000"], paths[0])


@pytest.mark.slow
def test_a_one_to_many_run_has_no_alignments_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_config("one_to_many", trainer={"steps": 2, "eval_every": 2, "checkpoint_every": 2}), run_dir)
    run = load_run(run_dir)
    features = load_splits(run.config.data).test.features[:2]
    assert len(run.decode(features)) == 2
    with pytest.raises(RunError, match="setup=one_to_many, which has no per-frame outputs"):
        run.log_probs(features)
    write_arrays(tmp_path / "mine.npz", features=[np.zeros((5, 6), np.float32)], labels=[np.array([0, 1])])
    with pytest.raises(RunError, match="setup=one_to_many, which gives no alignments; use a setup=order_sync or"):
        align_file(run_dir, tmp_path / "mine.npz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "setup, sections, message",
    [
        ("one_to_many", {"model": {"kind": "gru"}}, "one_to_many encodes one vector with an MLP; use model=mlp"),
        ("seq2seq", {"model": {"kind": "mlp"}}, "setup=seq2seq with model.kind=mlp"),
        ("one_to_many", {"model": {"conv_channels": [32, 0]}}, "model.conv_channels entries=0 must be >= 1"),
        ("seq2seq", {"align": {"schedule": "ctc"}}, "CTC needs setup=order_sync, not seq2seq"),
    ],
)
def test_bad_configurations_fail_in_one_line(setup, sections, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(setup, **sections)


def test_a_maximum_output_length_shorter_than_a_target_fails_in_one_line(tmp_path):
    config = tiny_config("seq2seq")
    config.setup.max_output_length = 2  # the tiny data's targets have up to 3 symbols
    with pytest.raises(ConfigError, match=r"setup.max_output_length=2 is shorter than the longest train target \(3"):
        train(config, tmp_path / "run")
    with pytest.raises(ConfigError, match="setup.attention='bahdanau' is not allowed"):
        compose_config({"setup": "seq2seq", "setup.attention": "bahdanau"})
