"""The jitted train step, the setups' losses, and end-to-end runs of every setup and schedule."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxalign import forward_score, uniform_align, viterbi_align
from jaxalign.align import forward_score_pallas, viterbi_align_pallas
from jaxalign.data import Batcher, SequenceData
from jaxalign.data.load import load_splits
from jaxalign.optim import lr_multiplier
from jaxalign.setups import frame_cross_entropy, make_setup
from jaxalign.training import make_train_step, train
from jaxalign.training.evaluation import evaluate_split
from jaxalign.training.step import forward, init_train_state, loss_and_metrics
from tests.helpers import tiny_config


def setup_step(config):
    """The setup, graphdef, initial state, jitted train step and a batcher, as the Trainer builds them."""
    splits = load_splits(config.data)
    setup = make_setup(config, splits.train.num_classes)
    graphdef, optimizer, state = init_train_state(config, setup, splits.train.feature_dim)
    batcher = Batcher(splits.train, config.trainer.batch_size, num_buckets=1, seed=0)
    step = make_train_step(graphdef, optimizer, setup, lr_multiplier(config.optim.schedule, config.trainer.steps))
    return setup, graphdef, state, step, batcher


@pytest.mark.slow
def test_train_step_compiles_once_and_logs_the_scheduled_learning_rate():
    config = tiny_config()
    setup, _, state, train_step, batcher = setup_step(config)
    key = jax.random.key(0)
    state, first = train_step(state, batcher.next_batch(), key)
    assert train_step._cache_size() == 1
    schedule = lr_multiplier("cosine", config.trainer.steps)
    assert float(first["learning_rate"]) == pytest.approx(config.optim.learning_rate * float(schedule(0)))
    state, _ = train_step(state, batcher.next_batch(), key)
    # a new peak learning rate is a new value in the optimizer state, not a new program
    *rest, injected = state.opt_state
    hyper = dict(injected.hyperparams, step_size=jnp.asarray(-1e-4, jnp.float32))
    state = state._replace(opt_state=(*rest, injected._replace(hyperparams=hyper)))
    state, third = train_step(state, batcher.next_batch(), key)
    assert train_step._cache_size() == 1
    assert float(third["learning_rate"]) == pytest.approx(1e-4 * float(schedule(2)))
    assert float(third["learning_rate"]) < 1e-4  # the cosine has started to decay: not the peak
    assert int(state.step) == 3 and np.isfinite(float(third["loss"]))


def test_golden_loss_after_one_step():
    """Update the expected numbers only if the change to the model, data or step was intended."""
    _, _, state, train_step, batcher = setup_step(tiny_config())
    batch = batcher.next_batch()
    state, first = train_step(state, batch, jax.random.key(0))
    _, second = train_step(state, batch, jax.random.key(0))
    np.testing.assert_allclose(float(first["loss"]), GOLDEN_FIRST_LOSS, rtol=2e-4)
    np.testing.assert_allclose(float(second["loss"]), GOLDEN_SECOND_LOSS, rtol=2e-4)


# The shipped defaults since the setup redesign: k=2 sub-states, cosine schedule, and the loss adds the
# local aligner's cross-entropy (align.aligner_context=3).
GOLDEN_FIRST_LOSS = 4.466759204864502
GOLDEN_SECOND_LOSS = (
    4.3788838386535645  # the GRU has b_hn since the recurrent-layer rewrite (zero at init, so the first loss stays)
)


def random_log_probs(batch, setup, seed=1):
    shape = batch["features"].shape[:2] + (setup.num_outputs,)
    return jax.nn.log_softmax(jax.random.normal(jax.random.key(seed), shape))


def expected_frame_loss(log_probs, batch, setup, positions):
    labels = setup.grid(batch).rows
    symbols = jnp.where(positions >= 0, jnp.take_along_axis(labels, jnp.maximum(positions, 0), axis=1), -1)
    total, count = frame_cross_entropy(log_probs, symbols, jnp.ones(symbols.shape))
    return total / count


@pytest.mark.slow
def test_per_step_trains_on_the_flat_start_during_warmup_then_on_the_viterbi_path():
    setup, _, _, _, batcher = setup_step(tiny_config(align={"warmup_steps": 5}))
    batch = batcher.next_batch()
    log_probs = random_log_probs(batch, setup)
    loss = jax.jit(lambda lp, step: setup.divergence(lp, lp, batch, step)[0])
    labels, label_pad = setup.grid(batch)[:2]
    flat = uniform_align(batch["logit_paddings"], label_pad)
    best = viterbi_align(log_probs, batch["logit_paddings"], labels, label_pad)
    np.testing.assert_allclose(
        loss(log_probs, jnp.int32(4)), expected_frame_loss(log_probs, batch, setup, flat.positions), rtol=1e-6
    )
    np.testing.assert_allclose(
        loss(log_probs, jnp.int32(5)), expected_frame_loss(log_probs, batch, setup, best.positions), rtol=1e-6
    )


def test_gradient_flows_through_the_model_only_not_through_the_alignment():
    """d loss / d log_probs is the cross-entropy gradient of the path held fixed: -1/N on the path."""
    setup, _, _, _, batcher = setup_step(tiny_config(align={"warmup_steps": 0}))
    batch = batcher.next_batch()
    log_probs = random_log_probs(batch, setup)
    grad = jax.grad(lambda lp: setup.divergence(lp, lp, batch, jnp.int32(0))[0])(log_probs)
    labels, label_pad = setup.grid(batch)[:2]
    best = viterbi_align(log_probs, batch["logit_paddings"], labels, label_pad)
    expected = -jax.nn.one_hot(best.symbols, setup.num_outputs) / jnp.sum(best.symbols >= 0)
    np.testing.assert_allclose(grad, expected, atol=1e-7)


def test_full_sum_loss_is_the_forward_score_per_frame_and_its_gradient_the_occupancy():
    setup, _, _, _, batcher = setup_step(tiny_config(align={"schedule": "full_sum", "warmup_steps": 0}))
    batch = batcher.next_batch()
    log_probs = random_log_probs(batch, setup)
    labels, label_pad = setup.grid(batch)[:2]
    frames = jnp.sum(batch["logit_paddings"] == 0)
    loss, grad = jax.value_and_grad(lambda lp: setup.divergence(lp, lp, batch, jnp.int32(0))[0])(log_probs)
    np.testing.assert_allclose(
        loss, -forward_score(log_probs, batch["logit_paddings"], labels, label_pad).sum() / frames, rtol=1e-6
    )
    occupancy = jax.grad(lambda lp: forward_score(lp, batch["logit_paddings"], labels, label_pad).sum())(log_probs)
    np.testing.assert_allclose(grad, -occupancy / frames, atol=1e-7)


def count_scans(fn, *args) -> int:
    """Scans at the top level of fn's jaxpr (a scan inside a cond branch does not count)."""
    return sum(eqn.primitive.name == "scan" for eqn in jax.make_jaxpr(fn)(*args).jaxpr.eqns)


def test_ctc_warmup_computes_no_viterbi_or_cross_entropy_outside_the_cond():
    """Both the CTC warm-up and the Viterbi-trained loss sit inside lax.cond: outside it the step
    runs only the model's scans (a Viterbi outside would add its forward and backtrace scans)."""
    setup, graphdef, state, _, batcher = setup_step(tiny_config(align={"init": "ctc_warmup", "warmup_steps": 5}))
    batch = batcher.next_batch()
    loss_scans = count_scans(lambda p: loss_and_metrics(p, graphdef, batch, None, setup, jnp.int32(0)), state.params)
    model_scans = count_scans(lambda p: forward(graphdef, p, batch), state.params)
    assert loss_scans == model_scans


def test_ctc_head_has_its_blank_last_and_decodes_substates_to_symbols():
    config = tiny_config(align={"schedule": "ctc", "states_per_symbol": 2})
    setup = make_setup(config, num_classes=4)
    assert (setup.num_outputs, setup.blank_id) == (9, 8)
    # frames: 3a 3b blank 3a 3b 1a 1b 1b blank -> "3 3 1"; class of (symbol s, sub-state j) is 2s+j
    path = [6, 7, 8, 6, 7, 2, 3, 3, 8]
    logits = 10.0 * jax.nn.one_hot(jnp.array([path]), 9)
    batch = {"logit_paddings": jnp.zeros((1, 9)), "labels": jnp.array([[3, 3, 1]]), "label_paddings": jnp.zeros((1, 3))}
    out = jax.device_get(jax.jit(setup.decode)(logits, batch))
    assert setup.hypothesis({key: value[0] for key, value in out.items()}) == [3, 3, 1]
    log_probs = np.asarray(jax.nn.log_softmax(logits[0]))
    assert setup.beam_decode(log_probs, beam_width=4) == [3, 3, 1]


def test_evaluate_split_totals_count_every_example_once():
    """A stub evaluation that decodes every example perfectly except that it drops the last symbol
    of even-numbered examples and misplaces their first frame: the totals are known exactly."""
    rng = np.random.default_rng(0)
    lengths = [(int(rng.integers(2, 5)), int(rng.integers(6, 12))) for _ in range(13)]  # 13: a partial last batch
    labels = [rng.integers(0, 3, size=L).astype(np.int32) for L, _ in lengths]
    alignments = [np.sort(np.r_[np.arange(L), rng.integers(0, L, size=T - L)]).astype(np.int32) for L, T in lengths]
    data = SequenceData([np.zeros((T, 2), np.float32) for _, T in lengths], labels, alignments, ["a", "b", "c"])
    setup = make_setup(tiny_config(align={"states_per_symbol": 1}), num_classes=3)

    def evaluate(batch):
        even = (batch["index"] % 2 == 0)[:, None]
        length = (batch["label_paddings"] == 0).sum(1, keepdims=True)
        last = np.arange(batch["labels"].shape[1])[None, :] == length - 1
        positions = batch["alignments"].copy()
        positions[:, 0] = np.where(even[:, 0], 1, positions[:, 0])  # frame 0 on row 1: wrong
        return {
            "labels": np.where(even & last, -1, batch["labels"]),
            "label_paddings": np.where(even & last, 1.0, batch["label_paddings"]),
            "frame_symbols": batch["frame_labels"],
            "positions": positions,
            "log_probs": np.zeros(batch["features"].shape[:2] + (3,)),
        }

    batcher = Batcher(data, 4, num_buckets=2)
    metrics, forced = evaluate_split(evaluate, data, batcher, setup, beam_width=1, to_host=lambda out: out)
    evens = range(0, 13, 2)
    assert metrics["label_error_rate"] == pytest.approx(len(evens) / sum(L for L, _ in lengths))
    assert metrics["frame_accuracy"] == 1.0
    assert metrics["alignment_accuracy"] == pytest.approx(1 - len(evens) / sum(T for _, T in lengths))
    assert [len(f) for f in forced] == [T for _, T in lengths]


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# Each end-to-end case learns the tiny synthetic task (4 classes, noise 0.3) in 60 steps: the bounds
# are well past chance (label error ~1, frame/alignment accuracy ~0.25-0.5 for an untrained net).
E2E = {"trainer": {"steps": 60, "eval_every": 30, "checkpoint_every": 30}, "optim": {"learning_rate": 0.01}}
CASES = {
    "per_step": ("order_sync", {}, {"label_error_rate": 0.4, "alignment_accuracy": 0.85}),
    "per_step_masked": ("order_sync", {"method": "masked"}, {"label_error_rate": 0.5, "alignment_accuracy": 0.85}),
    "per_step_k1": ("order_sync", {"states_per_symbol": 1}, {"label_error_rate": 0.4, "alignment_accuracy": 0.8}),
    "per_epoch": ("order_sync", {"schedule": "per_epoch"}, {"label_error_rate": 0.4, "alignment_accuracy": 0.85}),
    "realign_list": (
        "order_sync",
        {"schedule": "realign_list", "realign_at": [1, 2, 0.75]},
        {"label_error_rate": 0.4, "alignment_accuracy": 0.85},
    ),
    "full_sum": ("order_sync", {"schedule": "full_sum"}, {"label_error_rate": 0.4, "alignment_accuracy": 0.85}),
    "ctc": (
        "order_sync",
        {"schedule": "ctc"},
        {"label_error_rate": 0.85, "alignment_accuracy": 0.85},
    ),  # CTC learns slowest
    "ctc_warmup": ("order_sync", {"init": "ctc_warmup"}, {"label_error_rate": 0.4, "alignment_accuracy": 0.85}),
    "time_sync": ("time_sync", {}, {"frame_accuracy": 0.9}),
    "many_to_one": ("many_to_one", {}, {"accuracy": 0.9}),
    "one_to_one": ("one_to_one", {}, {"frame_accuracy": 0.9}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_end_to_end_run_learns(case, tmp_path):
    setup, align, bounds = CASES[case]
    final = train(tiny_config(setup=setup, align={"warmup_steps": 15, **align}, **E2E), tmp_path)
    lines = read_metrics(tmp_path)
    assert {"train", "valid", "test"} <= {line["split"] for line in lines}
    assert all(np.isfinite(line["loss"]) for line in lines if line["split"] == "train")
    for key, bound in bounds.items():
        better = final[key] <= bound if key == "label_error_rate" else final[key] >= bound
        assert better, f"{case}: test {key} {final[key]:.3f} misses its bound {bound}"
    if align.get("schedule") in ("per_epoch", "realign_list"):
        realigns = [line for line in lines if line["split"] == "realign"]
        assert realigns and all(0.0 <= r["alignment_churn"] <= 1.0 for r in realigns)
    if (
        align.get("schedule") == "realign_list"
    ):  # 8 batches an epoch: epochs 1 and 2 start at steps 8 and 16; 0.75 of 60 is 45
        assert [r["step"] for r in realigns] == [8, 16, 45]
    assert all((tmp_path / "figures" / f"alignment_test_{i}.png").stat().st_size > 0 for i in range(3))


@pytest.mark.slow
def test_realignment_beats_the_flat_start(tmp_path):
    """Symbols last 2-12 frames, so the flat start is often wrong: training on it alone decodes
    worse than realigning per step after a short warm-up (the notes' iteration)."""
    data = {"min_duration": 2, "max_duration": 12, "noise": 1.0}
    runs = {}
    for name, warmup in (("realigned", 20), ("flat_start_only", 80)):
        config = tiny_config(
            align={"warmup_steps": warmup},
            data=data,
            trainer={"steps": 80, "eval_every": 80, "checkpoint_every": 80},
            optim={"learning_rate": 0.01},
        )
        runs[name] = train(config, tmp_path / name)["label_error_rate"]
    assert runs["realigned"] < runs["flat_start_only"] - 0.1, runs


def test_prior_scale_divides_the_batch_mean_posterior_out_of_the_aligner_scores():
    setup, _, _, _, batcher = setup_step(tiny_config(align={"prior_scale": 0.7, "warmup_steps": 0}))
    batch = batcher.next_batch()
    log_probs = random_log_probs(batch, setup)
    valid = np.asarray((batch["logit_paddings"] == 0) & (batch["weights"][:, None] > 0))
    prior = np.asarray(jnp.exp(log_probs))[valid].mean(axis=0)
    labels, label_pad = setup.grid(batch)[:2]
    expected = viterbi_align(log_probs - 0.7 * jnp.log(prior), batch["logit_paddings"], labels, label_pad)
    np.testing.assert_array_equal(setup.align(log_probs, batch).positions, expected.positions)
    loss = setup.divergence(log_probs, log_probs, batch, jnp.int32(0))[0]
    np.testing.assert_allclose(loss, expected_frame_loss(log_probs, batch, setup, expected.positions), rtol=1e-6)


@pytest.mark.parametrize("step", [0, 4, 9, 10, 50])
def test_prior_steps_fade_the_prior_scale_to_zero_after_the_warm_up(step):
    """align.prior_steps = 10, no warm-up: the realignment at step s scores with the scale
    0.8 * (1 - s / 10), 0 from step 10 on; outside training (no step) the scale is the full 0.8."""
    setup, _, _, _, batcher = setup_step(tiny_config(align={"prior_scale": 0.8, "prior_steps": 10, "warmup_steps": 0}))
    scale = 0.8 * max(0.0, 1 - step / 10)
    np.testing.assert_allclose(setup.prior_scale_at(jnp.int32(step)), scale, atol=1e-6)
    assert setup.prior_scale_at(None) == 0.8
    batch = batcher.next_batch()
    log_probs = random_log_probs(batch, setup)
    valid = np.asarray((batch["logit_paddings"] == 0) & (batch["weights"][:, None] > 0))
    prior = np.asarray(jnp.exp(log_probs))[valid].mean(axis=0)
    labels, label_pad = setup.grid(batch)[:2]
    expected = viterbi_align(log_probs - scale * jnp.log(prior), batch["logit_paddings"], labels, label_pad)
    loss = setup.divergence(log_probs, log_probs, batch, jnp.int32(step))[0]
    np.testing.assert_allclose(loss, expected_frame_loss(log_probs, batch, setup, expected.positions), rtol=1e-6)


@pytest.mark.parametrize("mix", [0.0, 0.5, 1.0])
def test_a_local_aligner_supplies_the_targets_and_learns_from_them(mix):
    """The per_step path is the Viterbi path of log p_local + mix * log p_model (align.aligner_mix);
    both models learn from it."""
    setup, _, _, _, batcher = setup_step(
        tiny_config(align={"aligner_context": 2, "warmup_steps": 0, "aligner_mix": mix})
    )
    assert setup.aligner_context == 2
    batch = batcher.next_batch()
    log_probs, aligner_log_probs = random_log_probs(batch, setup, seed=1), random_log_probs(batch, setup, seed=2)
    labels, label_pad = setup.grid(batch)[:2]
    path = viterbi_align(aligner_log_probs + mix * log_probs, batch["logit_paddings"], labels, label_pad).positions
    if mix > 0:  # the mix changes the path on these random scores, so the check below can tell
        assert np.any(path != viterbi_align(aligner_log_probs, batch["logit_paddings"], labels, label_pad).positions)
    loss = setup.divergence(log_probs, log_probs, batch, jnp.int32(0), aligner_log_probs=aligner_log_probs)[0]
    expected = expected_frame_loss(log_probs, batch, setup, path) + expected_frame_loss(
        aligner_log_probs, batch, setup, path
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_the_local_aligner_sees_only_its_window():
    from jaxalign.models.local import LocalAligner

    aligner = LocalAligner(3, 5, context=2, hidden=8, rngs=nnx.Rngs(0))
    features = jax.random.normal(jax.random.key(0), (1, 20, 3))
    paddings = jnp.zeros((1, 20))
    changed = features.at[0, 10].set(9.0)
    moved = np.any(np.asarray(aligner(features, paddings) != aligner(changed, paddings)), axis=(0, 2))
    np.testing.assert_array_equal(np.flatnonzero(moved), [8, 9, 10, 11, 12])


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["per_step", "full_sum"])
def test_the_pallas_kernels_train_like_the_scans(schedule):
    """align.kernel=pallas (interpreted on CPU) selects the Pallas kernels; per_step finds the same paths,
    hence the same gradient and losses bit for bit; full_sum the same score, and a gradient equal up to
    summation order."""
    runs = []
    for kernel in ("scan", "pallas"):
        setup, graphdef, state, train_step, batcher = setup_step(
            tiny_config(align={"kernel": kernel, "schedule": schedule, "warmup_steps": 0})
        )
        pallas = kernel == "pallas"
        assert (setup.path_search is viterbi_align_pallas) == pallas and (
            setup.forward_score is forward_score_pallas
        ) == pallas
        batch = batcher.next_batch()
        grads = jax.grad(lambda p: loss_and_metrics(p, graphdef, batch, None, setup, jnp.int32(0))[0])(state.params)  # noqa: B023
        losses = []
        for _ in range(3):
            state, metrics = train_step(state, batch, jax.random.key(0))
            losses.append(float(metrics["loss"]))
            batch = batcher.next_batch()
        runs.append((grads, losses))
    (scan_grads, scan_losses), (pallas_grads, pallas_losses) = runs
    if schedule == "per_step":
        jax.tree.map(np.testing.assert_array_equal, scan_grads, pallas_grads)
        assert pallas_losses == scan_losses
    else:
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8), scan_grads, pallas_grads)
        np.testing.assert_allclose(pallas_losses, scan_losses, rtol=1e-5)


@pytest.mark.slow
def test_per_step_on_ctc_s_topology_trains_on_the_best_ctc_path():
    """align.topology=ctc: the frame targets are the tokens of the best path through CTC's grid of
    the sub-state rows (blanks included), found on the stop-gradient log-probs."""
    from jaxalign import ctc_forced_align

    config = tiny_config(align={"topology": "ctc", "init": "ctc_warmup", "warmup_steps": 0, "aligner_context": -1})
    setup, _, _, _, batcher = setup_step(config)
    assert setup.blank_id == setup.num_outputs - 1
    batch = batcher.next_batch()
    log_probs = random_log_probs(batch, setup)
    labels, label_pad = setup.grid(batch)[:2]
    path = ctc_forced_align(log_probs, batch["logit_paddings"], labels, label_pad, blank_id=setup.blank_id)
    assert np.any(np.asarray(path.tokens) == setup.blank_id)  # the check below sees blank targets
    valid = ((batch["logit_paddings"] == 0) & path.feasible[:, None]).astype(jnp.float32)
    total, count = frame_cross_entropy(log_probs, path.tokens, valid)
    loss = setup.divergence(log_probs, log_probs, batch, jnp.int32(0))[0]
    np.testing.assert_allclose(loss, total / count, rtol=1e-6)


@pytest.mark.parametrize(
    "align, message",
    [
        ({"topology": "ctc", "schedule": "per_epoch"}, "align.topology=ctc .* needs align.schedule=per_step"),
        (
            {"topology": "ctc", "kernel": "pallas"},
            "align.topology=ctc needs align.method=viterbi and align.kernel=scan",
        ),
        ({"topology": "ctc", "method": "masked"}, "align.topology=ctc needs align.method=viterbi"),
    ],
)
def test_ctc_topology_refuses_what_it_cannot_train(align, message):
    from jaxalign.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        tiny_config(align=align)
    with pytest.raises(ConfigError, match="CTC needs setup=order_sync"):
        tiny_config(setup="time_sync", align={"topology": "ctc"})


@pytest.mark.slow
def test_a_ctc_trained_net_reports_the_ctc_path_s_own_alignment(tmp_path):
    """Beside the Viterbi path over its symbol posteriors (blank left out), a CTC net's own best path
    through CTC's grid, with each blank frame given to the label before it, is scored as ctc_*."""
    from jaxalign import ctc_forced_align, load_run
    from jaxalign.align.ctc import label_rows
    from jaxalign.decoding import AlignmentScores

    config = tiny_config(align={"schedule": "ctc", "states_per_symbol": 1})
    final = train(config, tmp_path)
    test = load_splits(config.data).test
    run = load_run(tmp_path)
    scores = AlignmentScores()
    for log_probs, labels, truth in zip(run.log_probs(test.features), test.labels, test.alignments):
        path = ctc_forced_align(log_probs[None], np.zeros((1, len(log_probs))), labels[None], np.zeros((1, len(labels))),
                                blank_id=run.setup.blank_id)  # fmt: skip
        index = np.maximum.accumulate(np.asarray(path.label_index[0]))  # blanks: the label before them
        scores.add(np.maximum(index, 0), truth)
    expected = scores.result()
    for name in ("alignment_accuracy", "boundary_error", "boundaries_within_2"):
        assert final[f"ctc_{name}"] == pytest.approx(expected[name], abs=1e-6), name
    assert "alignment_accuracy" in final  # the Viterbi path over the symbol posteriors, as before
    assert label_rows(jnp.array([[0, 1, 2, 2, 3, 4, -1]])).tolist() == [[0, 0, 0, 0, 1, 1, -1]]
