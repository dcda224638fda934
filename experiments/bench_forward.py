"""Full-sum score over the target-ordered grid: jaxalign.forward_score (the scan, and the Pallas kernels of
forward_score_pallas) vs optax.ctc_loss, value and gradient.

    python experiments/bench_forward.py                  # 2-core CPU defaults, writes experiments/results/
    python experiments/bench_forward.py --batch 256 --frames 1000 --rows 100   # the GPU setting

optax.ctc_loss is the closest library op (the same forward-backward, on a grid of 2L+1 rows because
of the blank); both get the same log-probs and the same labels (ids 1..C-1, 0 being CTC's blank).
Times are medians of repeats after a warm-up; memory is XLA's compiled temporaries for one call.
forward_score_pallas is timed on GPUs (elsewhere only with --pallas: Pallas' interpreter is exact but
slow, and its CPU time says nothing about its GPU time).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxalign import forward_score
from jaxalign.align import forward_score_pallas


def make_problem(batch, frames, rows, classes, seed=0):
    rng = np.random.default_rng(seed)
    log_probs = jax.nn.log_softmax(rng.normal(size=(batch, frames, classes)).astype(np.float32) * 2)
    labels = rng.integers(1, classes, size=(batch, rows)).astype(np.int32)
    return log_probs, jnp.zeros((batch, frames)), jnp.asarray(labels), jnp.zeros((batch, rows))


def losses(unroll, pallas):
    """name -> (log_probs, logit_paddings, labels, label_paddings) -> (B,) loss."""
    found = {"forward_score": lambda *args: -forward_score(*args, unroll=unroll)}
    if pallas:
        found["forward_pallas"] = lambda *args: -forward_score_pallas(*args)
    # log_softmax of log-probs is the identity, so ctc_loss sees the same distribution.
    found["optax.ctc_loss"] = lambda *args: optax.ctc_loss(*args, blank_id=0)
    return found


def timed(fn, args, repeats):
    jax.block_until_ready(fn(*args))  # warm-up (compiles)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(loss, args, repeats):
    value = jax.jit(loss)
    value_and_grad = jax.jit(jax.value_and_grad(lambda x, *rest: loss(x, *rest).sum()))
    record = {}
    for mode, fn in (("value", value), ("value_and_grad", value_and_grad)):
        mem = fn.lower(*args).compile().memory_analysis()
        record[mode] = {"seconds": timed(fn, args, repeats), "temp_bytes": int(mem.temp_size_in_bytes)}
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--unroll", type=int, default=None, help="forward_score's unroll (default: by backend)")
    parser.add_argument(
        "--pallas",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add forward_score_pallas; default: on a GPU only (elsewhere it is interpreted)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_forward.json"))
    args = parser.parse_args(argv)
    if args.pallas is None:
        args.pallas = jax.default_backend() == "gpu"

    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), cores: {os.cpu_count()}")
    problem = make_problem(args.batch, args.frames, args.rows, args.classes)
    results = {}
    for name, loss in losses(args.unroll, args.pallas).items():
        try:
            results[name] = measure(loss, problem, args.repeats)
        except Exception as err:  # noqa: BLE001 - a Pallas kernel that does not build must not cost the other rows
            if name != "forward_pallas":
                raise
            results[name] = {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}

    print(f"\nB={args.batch} T={args.frames} L={args.rows} C={args.classes}, median of {args.repeats}")
    print(f"{'impl':<15} {'value ms':>9} {'temp MiB':>9} {'value+grad ms':>14} {'temp MiB':>9}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<15} ERROR {r['error']}")
            continue
        v, g = r["value"], r["value_and_grad"]
        print(
            f"{name:<15} {v['seconds'] * 1e3:>9.2f} {v['temp_bytes'] / 2**20:>9.1f}"
            f" {g['seconds'] * 1e3:>14.2f} {g['temp_bytes'] / 2**20:>9.1f}"
        )

    record = {
        "config": vars(args),
        "device": jax.devices()[0].device_kind,
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "optax": optax.__version__,
        "platform": platform.platform(),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
