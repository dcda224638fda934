"""Cost of per-step Viterbi realignment inside the train step, side by side in one run.

    python experiments/bench_train_step.py [--hidden 128] [--layers 2] [--states-per-symbol 2] [--batch 32]

Times three jitted train steps on the same batch shape and model (the default experiment's 2-layer
bidirectional GRU on digit strips): `per_step` (Viterbi on the stop-gradient log-probs inside the step), `fixed` (the same step
reading a stored alignment, as per_epoch does) and `ctc` (optax.ctc_loss over the same k sub-state labels, plus a blank output). Median of repeats after
compilation; ratios against `fixed`. Prints a table, writes JSON.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxalign import uniform_align
from jaxalign.data import Batcher, DigitStripsSpec, load_digit_strips
from jaxalign.models import SequenceModel
from jaxalign.training import StepSpec, TrainState, make_optimizer, make_train_step


def time_variant(schedule, data, args):
    spec = StepSpec(setup="order_sync", num_classes=data.num_classes, schedule=schedule, warmup_steps=0,
                    states_per_symbol=args.states_per_symbol)
    model = SequenceModel(data.feature_dim, spec.num_outputs, kind="gru", hidden=args.hidden, num_layers=args.layers,
                          bidirectional=True, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    optimizer = make_optimizer("adam", 1e-3)
    state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    step = make_train_step(graphdef, optimizer, spec)
    batcher = Batcher(data, args.batch, bounds=[args.frames])
    batches = []
    for _ in range(4):
        batch = batcher.next_batch()
        if spec.fixed_alignments:  # any valid stored path will do: the flat start
            batch["fixed_positions"] = np.asarray(uniform_align(batch["logit_paddings"], batch["label_paddings"]).positions)
        batches.append(batch)
    key = jax.random.key(0)
    state, metrics = step(state, batches[0], key)
    jax.block_until_ready(metrics)
    times = []
    for i in range(args.steps):
        tic = time.perf_counter()
        state, metrics = step(state, batches[i % len(batches)], key)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--states-per-symbol", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=64, help="padded frames of the bucket (longest strip is 60)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_train_step.json"))
    args = parser.parse_args(argv)
    data = load_digit_strips(DigitStripsSpec(num_train=1000, num_valid=0, num_test=0)).train
    results = {}
    for schedule, name in (("per_epoch", "fixed"), ("per_step", "per_step"), ("ctc", "ctc")):
        results[name] = {"seconds": time_variant(schedule, data, args)}
    for r in results.values():
        r["ratio_vs_fixed"] = r["seconds"] / results["fixed"]["seconds"]
    print(f"device: {jax.devices()[0].device_kind}; bi-GRU {args.layers}x{args.hidden}, k={args.states_per_symbol}, B={args.batch}, T={args.frames}")
    print(f"{'step':<10} {'median ms':>10} {'vs fixed':>9}")
    for name, r in results.items():
        print(f"{name:<10} {r['seconds'] * 1e3:>10.2f} {r['ratio_vs_fixed']:>9.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"config": vars(args), "device": jax.devices()[0].device_kind, "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
