"""The jitted train step and end-to-end runs of every setup and alignment schedule at tiny sizes."""

import json
from dataclasses import replace as dataclasses_replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxalign import uniform_align, viterbi_align
from jaxalign.data import Batcher
from jaxalign.data.load import load_splits
from jaxalign.models import SequenceModel
from jaxalign.training import TrainState, make_optimizer, make_train_step, train
from jaxalign.training.loop import make_spec
from jaxalign.training.step import _order_sync_targets, set_learning_rate
from tests.helpers import tiny_config


def setup_step(config):
    splits = load_splits(config.data)
    spec = make_spec(config, splits.train.num_classes)
    model = SequenceModel(splits.train.feature_dim, spec.num_outputs, kind=config.model.kind, hidden=config.model.hidden, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    optimizer = make_optimizer("adam", 1e-2)
    state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    batcher = Batcher(splits.train, 8, num_buckets=1, seed=0)
    return spec, graphdef, state, make_train_step(graphdef, optimizer, spec), batcher


def test_train_step_compiles_once_and_learning_rate_is_traced():
    spec, _, state, train_step, batcher = setup_step(tiny_config())
    key = jax.random.key(0)
    state, _ = train_step(state, batcher.next_batch(), key)
    assert train_step._cache_size() == 1
    state, _ = train_step(state, batcher.next_batch(), key)
    # a new learning rate is a new value in the optimizer state, not a new program
    state = state._replace(opt_state=set_learning_rate(state.opt_state, 1e-4))
    state, metrics = train_step(state, batcher.next_batch(), key)
    assert train_step._cache_size() == 1
    assert float(metrics["learning_rate"]) == pytest.approx(1e-4)
    assert int(state.step) == 3 and np.isfinite(float(metrics["loss"]))


def test_golden_loss_after_one_step():
    """Update the expected numbers only if the change to the model, data or step was intended."""
    spec, _, state, train_step, batcher = setup_step(tiny_config())
    batch = batcher.next_batch()
    state, first = train_step(state, batch, jax.random.key(0))
    _, second = train_step(state, batch, jax.random.key(0))
    np.testing.assert_allclose(float(first["loss"]), GOLDEN_FIRST_LOSS, rtol=2e-4)
    np.testing.assert_allclose(float(second["loss"]), GOLDEN_SECOND_LOSS, rtol=2e-4)


GOLDEN_FIRST_LOSS = 1.4947739839553833
GOLDEN_SECOND_LOSS = 1.3771990537643433


def test_per_step_targets_flat_start_during_warmup_then_viterbi():
    config = tiny_config(align={"warmup_steps": 5})
    spec, graphdef, state, _, batcher = setup_step(config)
    batch = batcher.next_batch()
    log_probs = jax.nn.log_softmax(jax.random.normal(jax.random.key(1), batch["features"].shape[:2] + (spec.num_outputs,)))
    pos_warm, _, _ = jax.jit(_order_sync_targets, static_argnums=2)(log_probs, batch, spec, jnp.int32(4))
    pos_after, sym_after, feasible = jax.jit(_order_sync_targets, static_argnums=2)(log_probs, batch, spec, jnp.int32(5))
    flat = uniform_align(batch["logit_paddings"], batch["label_paddings"])
    best = viterbi_align(log_probs, batch["logit_paddings"], batch["labels"], batch["label_paddings"])
    np.testing.assert_array_equal(pos_warm, flat.positions)
    np.testing.assert_array_equal(pos_after, best.positions)
    np.testing.assert_array_equal(sym_after, best.symbols)


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


CASES = {
    "per_step": ("order_sync", {}),
    "per_step_masked": ("order_sync", {"method": "masked"}),
    "per_step_substates": ("order_sync", {"states_per_symbol": 2}),
    "per_epoch": ("order_sync", {"schedule": "per_epoch"}),
    "realign_list": ("order_sync", {"schedule": "realign_list", "realign_at": [1, 2, 0.75]}),
    "ctc": ("order_sync", {"schedule": "ctc"}),
    "ctc_warmup": ("order_sync", {"init": "ctc_warmup"}),
    "time_sync": ("time_sync", {}),
    "many_to_one": ("many_to_one", {}),
    "one_to_one": ("one_to_one", {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_end_to_end_tiny_run(case, tmp_path):
    setup, align = CASES[case]
    final = train(tiny_config(setup=setup, align=align), tmp_path)
    lines = read_metrics(tmp_path)
    splits = {line["split"] for line in lines}
    assert {"train", "valid", "test"} <= splits
    assert all("step" in line for line in lines)
    assert 0.0 <= final["label_error_rate"]
    assert all(np.isfinite(line["loss"]) for line in lines if line["split"] == "train")
    if setup == "order_sync":
        assert 0.0 <= final["alignment_accuracy"] <= 1.0 and "boundary_error" in final
    if setup in ("time_sync", "one_to_one"):
        assert 0.0 <= final["frame_accuracy"] <= 1.0
    if setup == "many_to_one":
        assert final["accuracy"] == pytest.approx(1 - final["label_error_rate"])
    if align.get("schedule") in ("per_epoch", "realign_list"):
        realigns = [line for line in lines if line["split"] == "realign"]
        assert realigns and all(0.0 <= r["alignment_churn"] <= 1.0 for r in realigns)
    if align.get("schedule") == "realign_list":  # 8 batches an epoch: epoch 1 starts at step 8; 0.75 of 12 steps is 9
        assert [r["step"] for r in realigns] == [8, 9]
    assert (tmp_path / "figures" / "alignment_test.png").stat().st_size > 0


def test_end_to_end_on_bring_your_own_arrays_and_timit_layout(tmp_path):
    from jaxalign.config import ArraysConfig, TimitConfig
    from jaxalign.data import write_arrays
    from tests.test_data import make_timit

    source = load_splits(tiny_config().data).train
    path = write_arrays(tmp_path / "mine.npz", source.features, source.labels, alignments=source.alignments)
    final = train(dataclasses_replace(tiny_config(), data=ArraysConfig(path=str(path))), tmp_path / "arrays")
    assert "alignment_accuracy" in final
    root = make_timit(tmp_path / "TIMIT", [("TRAIN", "DR1", "FCJF0", "SI1"), ("TRAIN", "DR1", "FCJF0", "SI2"), ("TEST", "DR1", "MDAB0", "SI3")])
    timit_config = dataclasses_replace(tiny_config(trainer={"batch_size": 1, "steps": 4, "eval_every": 2}), data=TimitConfig(root=str(root), valid_speaker_fraction=0.0))
    final = train(timit_config, tmp_path / "timit")
    assert 0.0 <= final["alignment_accuracy"] <= 1.0
