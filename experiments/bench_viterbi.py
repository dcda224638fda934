"""Viterbi over the target-ordered grid: jaxalign vs NumPy, numba, librosa and dynamax, side by side.

    python experiments/bench_viterbi.py                # 2-core CPU defaults, writes experiments/results/
    python experiments/bench_viterbi.py --batch 256 --frames 1000 --rows 100   # the GPU setting
    python experiments/bench_viterbi.py --cpu-devices 2   # adds the batch sharded over 2 host devices

All peers solve the same problem (full-length sequences, path forced from row 0 at frame 0 to row L-1
at frame T-1); the score of every returned path is recomputed from the log-probs and checked against
jaxalign's. Times are medians of repeats after a warm-up; ratios are peer time / jaxalign time.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

if "--cpu-devices" in sys.argv:  # must be set before JAX starts
    n = sys.argv[sys.argv.index("--cpu-devices") + 1]
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}"

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign import viterbi_align


def make_problem(batch, frames, rows, classes, seed=0):
    rng = np.random.default_rng(seed)
    log_probs = np.asarray(jax.nn.log_softmax(rng.normal(size=(batch, frames, classes)).astype(np.float32) * 2))
    labels = rng.integers(0, classes, size=(batch, rows)).astype(np.int32)
    return log_probs, labels


def emissions(log_probs, labels):
    """(B, T, C), (B, L) -> (B, T, L) float32 log-prob of each grid row at each frame."""
    return np.take_along_axis(log_probs, labels[:, None, :], axis=2)


def path_scores(log_probs, labels, rows_BxT):
    emit = emissions(log_probs, labels).astype(np.float64)
    return np.take_along_axis(emit, rows_BxT[..., None].astype(np.int64), axis=2)[..., 0].sum(axis=1)


def numpy_loop(log_probs, labels):
    """Per-sequence loop over frames, vectorised over rows with NumPy."""
    emit_BxTxL = emissions(log_probs, labels)
    batch, frames, rows = emit_BxTxL.shape
    out = np.zeros((batch, frames), np.int64)
    for b in range(batch):
        alpha = np.full(rows, -np.inf, np.float32)
        alpha[0] = emit_BxTxL[b, 0, 0]
        back = np.zeros((frames, rows), np.bool_)
        for t in range(1, frames):
            move = np.concatenate(([-np.inf], alpha[:-1]))
            back[t] = move > alpha
            alpha = np.maximum(alpha, move) + emit_BxTxL[b, t]
        row = rows - 1
        for t in range(frames - 1, -1, -1):
            out[b, t] = row
            row -= back[t, row]
    return out


def build_numba_loop():
    import numba

    @numba.njit(cache=False, fastmath=False)
    def loop(log_probs, labels, out):
        batch, frames, _ = log_probs.shape
        rows = labels.shape[1]
        alpha = np.empty(rows, np.float32)
        back = np.zeros((frames, rows), np.uint8)
        for b in range(batch):
            for l in range(rows):
                alpha[l] = -np.inf
            alpha[0] = log_probs[b, 0, labels[b, 0]]
            for t in range(1, frames):
                for l in range(rows - 1, 0, -1):  # downward order so alpha[l-1] is still frame t-1
                    stay, move = alpha[l], alpha[l - 1]
                    if move > stay:
                        back[t, l] = 1
                        stay = move
                    else:
                        back[t, l] = 0
                    alpha[l] = stay + log_probs[b, t, labels[b, l]]
                alpha[0] += log_probs[b, t, labels[b, 0]]
            row = rows - 1
            for t in range(frames - 1, -1, -1):
                out[b, t] = row
                row -= back[t, row]

    def run(log_probs, labels):
        out = np.zeros(log_probs.shape[:2], np.int64)
        loop(log_probs, labels, out)
        return out

    return run


def sink_transitions(rows):
    """Bidiagonal (stay/move 0.5 each) plus an absorbing sink after the last row, so every path of
    T frames pays the same (T-1) log 0.5 and the HMM optimum is the grid optimum."""
    trans = np.zeros((rows + 1, rows + 1))
    idx = np.arange(rows)
    trans[idx, idx] = 0.5
    trans[idx, idx + 1] = 0.5
    trans[rows, rows] = 1.0
    return trans


def build_librosa(rows):
    import librosa

    trans = sink_transitions(rows)
    p_init = np.eye(rows + 1)[0]

    def run(log_probs, labels):
        emit = emissions(log_probs, labels).astype(np.float64)
        batch, frames, _ = emit.shape
        prob = np.zeros((batch, rows + 1, frames))
        prob[:, :rows] = np.exp(emit).transpose(0, 2, 1)
        prob[:, : rows - 1, -1] = 0.0  # end on the last row
        return librosa.sequence.viterbi(prob, trans, p_init=p_init).astype(np.int64)

    return run


def build_dynamax(rows):
    from dynamax.hidden_markov_model import hmm_posterior_mode

    trans = jnp.asarray(sink_transitions(rows), jnp.float32)
    init = jnp.asarray(np.eye(rows + 1)[0], jnp.float32)

    @jax.jit
    def batched(emit_BxTxL):
        frames = emit_BxTxL.shape[1]
        sink = jnp.full(emit_BxTxL.shape[:2] + (1,), -jnp.inf)
        ll = jnp.concatenate([emit_BxTxL, sink], axis=2)
        last_ok = jnp.arange(rows + 1) == rows - 1
        ll = ll.at[:, frames - 1, :].set(jnp.where(last_ok, ll[:, frames - 1, :], -jnp.inf))
        return jax.vmap(lambda x: hmm_posterior_mode(init, trans, x))(ll)

    def run(log_probs, labels):
        return np.asarray(batched(jnp.asarray(emissions(log_probs, labels)))).astype(np.int64)

    return run


def build_jaxalign(batch, frames, rows, sharded=False):
    """sharded: the batch split over all local devices (jax.make_mesh + NamedSharding)."""
    logit_pad = jnp.zeros((batch, frames))
    label_pad = jnp.zeros((batch, rows))
    put = lambda x: x  # noqa: E731
    if sharded:
        mesh = jax.make_mesh((jax.device_count(),), ("data",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
        put = lambda x: jax.device_put(x, sharding)  # noqa: E731
        logit_pad, label_pad = put(logit_pad), put(label_pad)

    def run(log_probs, labels):
        ali = viterbi_align(put(log_probs), logit_pad, put(labels), label_pad)
        return ali.positions.block_until_ready()

    return run


def timed(fn, args, repeats, min_seconds=0.0):
    fn(*args)  # warm-up (compiles)
    times = []
    while len(times) < repeats or sum(times) < min_seconds:
        start = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - start)
        if len(times) >= 200:
            break
    return statistics.median(times), np.asarray(out)


def copy_bandwidth():
    """Bytes per second of a large host memory copy (read + write counted once each)."""
    src = np.ones(64 * 2**20 // 4, np.float32)
    dst = np.empty_like(src)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(times)


def peak_memory_bytes(batch, frames, rows, classes):
    """XLA's own accounting for one compiled call: arguments + outputs + temporaries."""
    args = (
        jax.ShapeDtypeStruct((batch, frames, classes), jnp.float32),
        jax.ShapeDtypeStruct((batch, frames), jnp.float32),
        jax.ShapeDtypeStruct((batch, rows), jnp.int32),
        jax.ShapeDtypeStruct((batch, rows), jnp.float32),
    )
    mem = viterbi_align.lower(*args).compile().memory_analysis()
    return {
        "argument_bytes": int(mem.argument_size_in_bytes),
        "output_bytes": int(mem.output_size_in_bytes),
        "temp_bytes": int(mem.temp_size_in_bytes),
        "total_bytes": int(mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes),
    }


def compare(batch, frames, rows, classes, repeats, peers):
    log_probs, labels = make_problem(batch, frames, rows, classes)
    cells = batch * frames * rows
    builders = {
        "jaxalign": lambda: build_jaxalign(batch, frames, rows),
        "jaxalign_sharded": lambda: build_jaxalign(batch, frames, rows, sharded=True),
        "numpy_loop": lambda: numpy_loop,
        "numba_loop": build_numba_loop,
        "librosa": lambda: build_librosa(rows),
        "dynamax": lambda: build_dynamax(rows),
    }
    results = {}
    for name in ["jaxalign"] + peers:
        fn = builders[name]()
        reps = repeats if name not in ("numpy_loop", "librosa") else max(3, repeats // 5)
        seconds, rows_BxT = timed(fn, (log_probs, labels), reps)
        results[name] = {"seconds": seconds, "cells_per_second": cells / seconds, "scores": path_scores(log_probs, labels, rows_BxT)}
    ref = results["jaxalign"]["scores"]
    for name, res in results.items():
        res["max_score_diff"] = float(np.max(np.abs(res.pop("scores") - ref)))
        res["same_score"] = res["max_score_diff"] <= 1e-3 * frames / 100
        res["ratio_vs_jaxalign"] = res["seconds"] / results["jaxalign"]["seconds"]
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--peers", default="numpy_loop,numba_loop,librosa,dynamax")
    parser.add_argument("--no-sweep", action="store_true", help="skip the T and L sweep")
    parser.add_argument("--cpu-devices", type=int, default=1, help="split the host into N XLA devices and add a batch-sharded jaxalign row")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_viterbi.json"))
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    if jax.device_count() > 1:
        peers.insert(0, "jaxalign_sharded")

    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}) x{jax.device_count()}, cores: {os.cpu_count()}")
    main_run = compare(args.batch, args.frames, args.rows, args.classes, args.repeats, peers)
    print(f"\nB={args.batch} T={args.frames} L={args.rows} C={args.classes}")
    print(f"{'impl':<12} {'median ms':>10} {'Mcells/s':>10} {'peer/jaxalign':>14} {'same score':>11}")
    for name, r in main_run.items():
        print(f"{name:<12} {r['seconds'] * 1e3:>10.2f} {r['cells_per_second'] / 1e6:>10.1f} {r['ratio_vs_jaxalign']:>14.1f} {str(r['same_score']):>11}")

    bandwidth = copy_bandwidth()
    floor_bytes = args.batch * args.frames * (args.classes * 4 + args.rows * 1)
    floor_s = floor_bytes / bandwidth
    print(f"\nmemory floor: {floor_bytes / 2**20:.1f} MiB (log-probs read + 1-byte backpointers written)"
          f" / {bandwidth / 1e9:.1f} GB/s copy = {floor_s * 1e3:.2f} ms;"
          f" jaxalign is {main_run['jaxalign']['seconds'] / floor_s:.1f}x the floor")
    peak = peak_memory_bytes(64, 2000, 200, args.classes)
    print(f"compiled memory at B=64 T=2000 L=200 C={args.classes}: {peak['total_bytes'] / 2**20:.1f} MiB"
          f" (temporaries {peak['temp_bytes'] / 2**20:.1f} MiB)")

    sweep = []
    if not args.no_sweep:
        print(f"\nlinear cost (jaxalign vs numba_loop, B={args.batch}, C={args.classes}):")
        print(f"{'T':>6} {'L':>5} {'jaxalign ms':>12} {'ns/cell':>8} {'numba ms':>9} {'ratio':>6}")
        for frames, rows in [(100, 60), (200, 60), (400, 60), (800, 60), (1600, 60), (400, 15), (400, 30), (400, 120), (400, 240)]:
            res = compare(args.batch, frames, rows, args.classes, max(5, args.repeats // 3), ["numba_loop"])
            j, n = res["jaxalign"], res["numba_loop"]
            ns = 1e9 / j["cells_per_second"]
            print(f"{frames:>6} {rows:>5} {j['seconds'] * 1e3:>12.2f} {ns:>8.2f} {n['seconds'] * 1e3:>9.2f} {n['ratio_vs_jaxalign']:>6.1f}")
            sweep.append({"frames": frames, "rows": rows, **{k: v for k, v in res.items()}})

    record = {
        "config": vars(args),
        "device": jax.devices()[0].device_kind,
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "platform": platform.platform(),
        "main": main_run,
        "copy_bandwidth_bytes_per_s": bandwidth,
        "memory_floor_seconds": floor_s,
        "peak_memory_B64_T2000_L200": peak,
        "sweep": sweep,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2, default=float))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
