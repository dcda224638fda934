"""Viterbi over the target-ordered grid: jaxalign vs NumPy, numba, librosa, dynamax, a CUDA kernel,
a PyTorch loop and torchaudio's CTC forced_align, side by side; then CTC forced alignment itself,
`jaxalign.ctc_forced_align` against torchaudio's `forced_align` per sequence on the CPU.

    python experiments/bench_viterbi.py                # 2-core CPU defaults, writes experiments/results/
    python experiments/bench_viterbi.py --cpu-devices 2   # adds the batch sharded over 2 host devices
    python experiments/bench_viterbi.py --batch 256 --frames 1000 --rows 100 --no-sweep \
        --peers jaxalign_pallas,jaxalign_unroll1,numba_cuda,torch_loop,torchaudio,numba_loop    # the GPU setting
    python experiments/bench_viterbi.py --batch 16 --frames 10000 --rows 500 --repeats 3 \
        --peers jaxalign_packed,numba_loop --no-sweep --out experiments/results/bench_viterbi_long.json   # long sequences
    python experiments/bench_viterbi.py --graph-only --rows 50   # the graph kernel on the grid vs the grid kernels

All peers solve the same problem (full-length sequences, path forced from row 0 at frame 0 to row L-1
at frame T-1; labels have no adjacent repeats, so that CTC with a -inf blank has the same paths); the
score of every returned path is recomputed from the log-probs and checked against jaxalign's, and
`same positions` says whether the path itself is jaxalign's (the tie-break is implementation-defined).
Inputs are put on each peer's device before timing; a time covers the emission gather, the recursion
and the backtrace up to positions on that device. Times are medians of repeats after a warm-up
(fewer repeats where a peer needs more than --max-seconds); ratios are peer time / jaxalign time.
`jaxalign` uses the per-backend unroll default (`scan_unroll`: 1 on CPU, 16 on GPU); `jaxalign_unrollN`
sets it; `jaxalign_packed` keeps 1-bit backpointers (`viterbi_align(..., packed=True)`); `jaxalign_pallas` is
`viterbi_align_pallas`, the same result from one Pallas kernel (Triton on a GPU, the interpreter elsewhere);
`jaxalign_graph` is `graph_viterbi` over `grid_graph` (the graph built once, outside the timed call). A peer that
cannot run here (no CUDA device, package missing) is listed with the reason. `--graph-only` runs just the
graph kernels against the grid kernels they generalise (`graph_viterbi` vs `viterbi_align`, `graph_forward`
vs `forward_score` with its gradient), calls interleaved and timed min-of-N (for a shared, noisy machine).
"""

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

# JAX would otherwise take 75 % of a GPU's memory at start, leaving little to the PyTorch and numba peers.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
if "--cpu-devices" in sys.argv:  # must be set before JAX starts
    n = sys.argv[sys.argv.index("--cpu-devices") + 1]
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}"

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign import ctc_forced_align, forward_score, graph_forward, graph_viterbi, grid_graph, viterbi_align
from jaxalign.align import viterbi_align_pallas
from jaxalign.align.types import scan_unroll


def make_problem(batch, frames, rows, classes, seed=0):
    """Random log-probs and labels with no symbol twice in a row (each next one uniform over the others)."""
    rng = np.random.default_rng(seed)
    log_probs = np.asarray(jax.nn.log_softmax(rng.normal(size=(batch, frames, classes)).astype(np.float32) * 2))
    steps = rng.integers(1, classes, size=(batch, rows))
    steps[:, 0] = rng.integers(0, classes, size=batch)
    labels = (np.cumsum(steps, axis=1) % classes).astype(np.int32)
    return log_probs, labels


class Peer(NamedTuple):
    run: Callable[[], object]  # one timed call; returns positions on the peer's device
    to_host: Callable[[object], np.ndarray]  # run's result -> (B, T) NumPy positions
    device: str
    note: str = ""


class Unavailable(Exception):
    """The peer cannot run here (no device, package missing); the message says why."""


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


def host_peer(fn, log_probs, labels, note=""):
    return Peer(lambda: fn(log_probs, labels), np.asarray, "cpu", note)


def build_numba_loop(log_probs, labels):
    try:
        import numba
    except ImportError:
        raise Unavailable("numba is not installed") from None

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

    def run():
        out = np.zeros(log_probs.shape[:2], np.int64)
        loop(log_probs, labels, out)
        return out

    return Peer(run, np.asarray, "cpu", "one compiled loop per sequence")


def sink_transitions(rows):
    """Bidiagonal (stay/move 0.5 each) plus an absorbing sink after the last row, so every path of
    T frames pays the same (T-1) log 0.5 and the HMM optimum is the grid optimum."""
    trans = np.zeros((rows + 1, rows + 1))
    idx = np.arange(rows)
    trans[idx, idx] = 0.5
    trans[idx, idx + 1] = 0.5
    trans[rows, rows] = 1.0
    return trans


def build_librosa(log_probs, labels):
    try:
        import librosa
    except ImportError:
        raise Unavailable("librosa is not installed") from None
    rows = labels.shape[1]
    trans = sink_transitions(rows)
    p_init = np.eye(rows + 1)[0]

    def run():
        emit = emissions(log_probs, labels).astype(np.float64)
        batch, frames, _ = emit.shape
        prob = np.zeros((batch, rows + 1, frames))
        prob[:, :rows] = np.exp(emit).transpose(0, 2, 1)
        prob[:, : rows - 1, -1] = 0.0  # end on the last row
        return librosa.sequence.viterbi(prob, trans, p_init=p_init).astype(np.int64)

    return Peer(run, np.asarray, "cpu", "dense HMM Viterbi with a sink state")


def build_dynamax(log_probs, labels):
    try:
        from dynamax.hidden_markov_model import hmm_posterior_mode
    except ImportError:
        raise Unavailable("dynamax is not installed") from None
    rows = labels.shape[1]
    trans = jnp.asarray(sink_transitions(rows), jnp.float32)
    init = jnp.asarray(np.eye(rows + 1)[0], jnp.float32)

    @jax.jit
    def batched(log_probs_BxTxC, labels_BxL):
        emit_BxTxL = jnp.take_along_axis(log_probs_BxTxC, labels_BxL[:, None, :], axis=2)
        frames = emit_BxTxL.shape[1]
        sink = jnp.full(emit_BxTxL.shape[:2] + (1,), -jnp.inf)
        ll = jnp.concatenate([emit_BxTxL, sink], axis=2)
        last_ok = jnp.arange(rows + 1) == rows - 1
        ll = ll.at[:, frames - 1, :].set(jnp.where(last_ok, ll[:, frames - 1, :], -jnp.inf))
        return jax.vmap(lambda x: hmm_posterior_mode(init, trans, x))(ll)

    args = (jnp.asarray(log_probs), jnp.asarray(labels))
    return Peer(
        lambda: batched(*args).block_until_ready(),
        np.asarray,
        jax.default_backend(),
        "dense HMM Viterbi with a sink state",
    )


def build_jaxalign(log_probs, labels, unroll=None, sharded=False, packed=False):
    """unroll: None is the per-backend default. sharded: the batch split over all local devices
    (jax.make_mesh + NamedSharding). packed: bit-packed backpointers."""
    batch, frames, _ = log_probs.shape
    rows = labels.shape[1]
    put = jnp.asarray
    if sharded:
        mesh = jax.make_mesh((jax.device_count(),), ("data",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
        put = lambda x: jax.device_put(x, sharding)  # noqa: E731
    args = [
        put(x) for x in (log_probs, np.zeros((batch, frames), np.float32), labels, np.zeros((batch, rows), np.float32))
    ]
    jax.block_until_ready(args)

    align = jax.jit(
        functools.partial(viterbi_align, unroll=unroll, packed=packed)
    )  # as jitted code calls it: unchecked

    def run():
        return align(*args).positions.block_until_ready()

    note = (
        f"unroll={scan_unroll(unroll)}"
        + (f", batch over {jax.device_count()} devices" if sharded else "")
        + (", 1-bit backpointers" if packed else "")
    )
    return Peer(run, np.asarray, jax.default_backend(), note)


def build_jaxalign_pallas(log_probs, labels):
    """`viterbi_align_pallas`: one Triton kernel on a GPU; Pallas' interpreter elsewhere (exact, slow)."""
    batch, frames, _ = log_probs.shape
    args = [
        jnp.asarray(x)
        for x in (log_probs, np.zeros((batch, frames), np.float32), labels, np.zeros(labels.shape, np.float32))
    ]
    jax.block_until_ready(args)

    align = jax.jit(viterbi_align_pallas)  # as jitted code calls it: unchecked

    def run():
        return align(*args).positions.block_until_ready()

    gpu = jax.default_backend() == "gpu"
    return Peer(
        run,
        np.asarray,
        jax.default_backend(),
        "Pallas kernel, program per sequence" if gpu else "Pallas interpreter (no GPU)",
    )


def build_jaxalign_graph(log_probs, labels):
    """`graph_viterbi` over `grid_graph`: the general kernel on the grid that `viterbi_align` solves."""
    batch, frames, _ = log_probs.shape
    log_probs, logit_pad = jnp.asarray(log_probs), jnp.zeros((batch, frames))
    graph = jax.block_until_ready(grid_graph(jnp.asarray(labels), jnp.zeros(labels.shape)))
    align = jax.jit(graph_viterbi)  # as jitted code calls it: unchecked

    def run():
        return align(log_probs, logit_pad, graph).states.block_until_ready()

    return Peer(run, np.asarray, jax.default_backend(), f"graph_viterbi(grid_graph), unroll={scan_unroll(None)}")


def build_numba_cuda(log_probs, labels):
    try:
        from numba import config, cuda
    except ImportError:
        raise Unavailable("numba-cuda is not installed") from None
    if config.ENABLE_CUDASIM:
        raise Unavailable(
            "NUMBA_ENABLE_CUDASIM=1: the simulator checks the kernel (viterbi_cuda_kernel.py), it does not time it"
        )
    if not cuda.is_available():
        raise Unavailable("no CUDA device (GPU only)")
    sys.path.insert(0, str(Path(__file__).parent))
    from viterbi_cuda_kernel import CudaViterbi

    batch, frames, _ = log_probs.shape
    kernel = CudaViterbi(batch, frames, labels.shape[1])
    args = [
        cuda.to_device(np.ascontiguousarray(x))
        for x in (
            log_probs,
            labels.astype(np.int32),
            np.full(batch, frames, np.int32),
            np.full(batch, labels.shape[1], np.int32),
        )
    ]

    def run():
        positions, _ = kernel(*args)
        cuda.synchronize()
        return positions

    return Peer(
        run, lambda out: out.copy_to_host(), "gpu", f"block per sequence, thread per row ({kernel.threads} threads)"
    )


def torch_device():
    try:
        import torch
    except ImportError:
        raise Unavailable("torch is not installed") from None
    return torch, torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_torch_loop(log_probs, labels):
    """PyTorch eager: a Python loop over frames, each step vectorised over batch and rows."""
    torch, device = torch_device()
    batch, frames, _ = log_probs.shape
    rows = labels.shape[1]
    log_probs_BxTxC = torch.from_numpy(np.array(log_probs)).to(device)
    index_BxTxL = torch.as_tensor(labels.astype(np.int64), device=device)[:, None, :].expand(batch, frames, rows)
    neg_inf_Bx1 = torch.full((batch, 1), -float("inf"), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    @torch.inference_mode()
    def run():
        emit_BxTxL = torch.gather(log_probs_BxTxC, 2, index_BxTxL)
        alpha_BxL = torch.cat([emit_BxTxL[:, 0, :1], neg_inf_Bx1.expand(batch, rows - 1)], dim=1)
        backptr_TxBxL = torch.zeros((frames, batch, rows), dtype=torch.uint8, device=device)
        for t in range(1, frames):
            move_BxL = torch.cat([neg_inf_Bx1, alpha_BxL[:, :-1]], dim=1)
            backptr_TxBxL[t] = move_BxL > alpha_BxL
            alpha_BxL = torch.maximum(alpha_BxL, move_BxL) + emit_BxTxL[:, t]
        row_B = torch.full((batch,), rows - 1, dtype=torch.int64, device=device)
        positions_BxT = torch.empty((batch, frames), dtype=torch.int64, device=device)
        positions_BxT[:, frames - 1] = row_B
        for t in range(frames - 1, 0, -1):
            step_B = backptr_TxBxL[t].gather(1, row_B[:, None])[:, 0]
            row_B = torch.clamp(row_B - step_B, max=t - 1)
            positions_BxT[:, t - 1] = row_B
        sync()
        return positions_BxT

    return Peer(run, lambda out: out.cpu().numpy(), device.type, f"eager loop over frames, torch {torch.__version__}")


def build_torchaudio(log_probs, labels):
    """torchaudio.functional.forced_align (CTC, batch size 1) in a loop over the batch. With the blank
    at -inf and no symbol twice in a row, CTC's paths are exactly the grid's; its tokens per frame are
    turned into rows by counting the changes."""
    torch, device = torch_device()
    try:
        import torchaudio
        from torchaudio.functional import forced_align
    except (ImportError, OSError) as err:
        raise Unavailable(f"torchaudio is not usable here: {err}") from None
    if (labels[:, 1:] == labels[:, :-1]).any():
        raise Unavailable("labels repeat a symbol: CTC needs a blank between repeats, which the grid does not have")
    batch, frames, classes = log_probs.shape
    blank = classes  # an extra class that no path can use
    padded = np.concatenate([log_probs, np.full((batch, frames, 1), -np.inf, np.float32)], axis=2)
    log_probs_1xTxC = [torch.as_tensor(padded[b : b + 1], device=device) for b in range(batch)]
    targets_1xL = [torch.as_tensor(labels[b : b + 1].astype(np.int32), device=device) for b in range(batch)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run():
        tokens = [forced_align(lp, tg, blank=blank)[0] for lp, tg in zip(log_probs_1xTxC, targets_1xL)]
        sync()
        return tokens

    def to_host(tokens):
        tokens_BxT = torch.cat(tokens).cpu().numpy()
        changes = np.concatenate([np.zeros((batch, 1), np.int64), (tokens_BxT[:, 1:] != tokens_BxT[:, :-1])], axis=1)
        return np.cumsum(changes, axis=1)

    return Peer(
        run,
        to_host,
        device.type,
        f"CTC forced_align, -inf blank, looped over the batch; torchaudio {torchaudio.__version__}",
    )


BUILDERS = {
    "jaxalign_sharded": lambda lp, lab: build_jaxalign(lp, lab, sharded=True),
    "jaxalign_pallas": build_jaxalign_pallas,
    "jaxalign_graph": build_jaxalign_graph,
    "numpy_loop": lambda lp, lab: host_peer(numpy_loop, lp, lab, "per sequence, vectorised over rows"),
    "numba_loop": build_numba_loop,
    "librosa": build_librosa,
    "dynamax": build_dynamax,
    "numba_cuda": build_numba_cuda,
    "torch_loop": build_torch_loop,
    "torchaudio": build_torchaudio,
}


def builder(name):
    if name == "jaxalign":
        return build_jaxalign
    if name == "jaxalign_packed":
        return lambda lp, lab: build_jaxalign(lp, lab, packed=True)
    if name.startswith("jaxalign_unroll"):
        return lambda lp, lab: build_jaxalign(lp, lab, unroll=int(name.removeprefix("jaxalign_unroll")))
    if name not in BUILDERS:
        raise SystemExit(f"unknown peer {name!r}; known: jaxalign_unrollN, {', '.join(BUILDERS)}")
    return BUILDERS[name]


def timed(fn, repeats, max_seconds=10.0):
    """Median seconds of `repeats` calls after a warm-up; stops early (after at least 3, or 1 if one
    call already took max_seconds) once the calls add up to max_seconds."""
    out = fn()  # warm-up (compiles)
    times = []
    while len(times) < repeats:
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        if sum(times) >= max_seconds and (len(times) >= 3 or times[0] >= max_seconds):
            break
    return statistics.median(times), len(times), out


def copy_bandwidth():
    """Bytes per second of a large copy on the default device (read + write counted once each):
    NumPy on CPU, a jitted copy on an accelerator."""
    if jax.default_backend() == "cpu":
        src = np.ones(64 * 2**20 // 4, np.float32)
        dst = np.empty_like(src)
        copy = lambda: np.copyto(dst, src)  # noqa: E731
    else:
        src = jnp.ones(512 * 2**20 // 4, jnp.float32)
        double = jax.jit(lambda x: x * 2)
        copy = lambda: double(src).block_until_ready()  # noqa: E731
        copy()
    times = []
    for _ in range(7):
        start = time.perf_counter()
        copy()
        times.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(times)


def peak_memory_bytes(batch, frames, rows, classes, packed=False):
    """XLA's own accounting for one compiled call: arguments + outputs + temporaries, beside the
    (T-1) x B x L backpointers that the temporaries hold (one byte each, or one bit with `packed`,
    rounded up to 32-row words)."""
    args = (
        jax.ShapeDtypeStruct((batch, frames, classes), jnp.float32),
        jax.ShapeDtypeStruct((batch, frames), jnp.float32),
        jax.ShapeDtypeStruct((batch, rows), jnp.int32),
        jax.ShapeDtypeStruct((batch, rows), jnp.float32),
    )
    mem = viterbi_align.lower(*args, packed=packed).compile().memory_analysis()
    return {
        "argument_bytes": int(mem.argument_size_in_bytes),
        "output_bytes": int(mem.output_size_in_bytes),
        "temp_bytes": int(mem.temp_size_in_bytes),
        "total_bytes": int(mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes),
        "backpointer_bytes": batch * max(frames - 1, 0) * (4 * -(-rows // 32) if packed else rows),
    }


def compare(batch, frames, rows, classes, repeats, peers, max_seconds=10.0):
    """name -> timing and check record; a peer that cannot run has `skipped` or `error` instead."""
    log_probs, labels = make_problem(batch, frames, rows, classes)
    cells = batch * frames * rows
    results, paths = {}, {}
    for name in ["jaxalign"] + [p for p in peers if p != "jaxalign"]:
        try:
            peer = builder(name)(log_probs, labels)
            reps = repeats if name not in ("numpy_loop", "librosa") else max(3, repeats // 5)
            seconds, done, out = timed(peer.run, reps, max_seconds)
            paths[name] = peer.to_host(out)
        except Unavailable as why:
            results[name] = {"skipped": str(why)}
            continue
        except Exception as err:  # noqa: BLE001 - one broken peer must not stop the others
            if name == "jaxalign":
                raise
            results[name] = {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
            continue
        results[name] = {
            "seconds": seconds,
            "repeats": done,
            "cells_per_second": cells / seconds,
            "device": peer.device,
            "note": peer.note,
        }
    ref_scores = path_scores(log_probs, labels, paths["jaxalign"])
    for name, rows_BxT in paths.items():
        res = results[name]
        res["max_score_diff"] = float(np.max(np.abs(path_scores(log_probs, labels, rows_BxT) - ref_scores)))
        res["same_score"] = res["max_score_diff"] <= 1e-3 * frames / 100
        res["same_positions"] = bool(np.array_equal(rows_BxT, paths["jaxalign"]))
        res["ratio_vs_jaxalign"] = res["seconds"] / results["jaxalign"]["seconds"]
    return results


def print_table(results):
    print(
        f"{'impl':<18} {'device':>6} {'median ms':>10} {'Mcells/s':>9} {'peer/jaxalign':>13} {'same score':>10} {'same pos':>8}  note"
    )
    for name, r in results.items():
        if "seconds" not in r:
            print(
                f"{name:<18} {'-':>6} {'-':>10} {'-':>9} {'-':>13} {'-':>10} {'-':>8}  {r.get('skipped') or 'ERROR ' + r['error']}"
            )
            continue
        print(
            f"{name:<18} {r['device']:>6} {r['seconds'] * 1e3:>10.2f} {r['cells_per_second'] / 1e6:>9.1f} {r['ratio_vs_jaxalign']:>13.2f}"
            f" {str(r['same_score']):>10} {str(r['same_positions']):>8}  {r['note']}"
        )


def versions():
    found = {"python": sys.version.split()[0], "jax": jax.__version__, "numpy": np.__version__}
    for module in ("torch", "torchaudio", "numba", "numba_cuda"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - absent or broken: not part of this run
            pass
    return found


def compare_ctc(batch, frames, rows, classes, repeats, max_seconds=10.0):
    """CTC forced alignment: `jaxalign.ctc_forced_align` (the batch in one jitted call) against
    torchaudio's `forced_align` called once per sequence on the CPU (how it is used), on random
    emissions with the blank as class 0 and `rows` labels (repeats allowed) per sequence."""
    rng = np.random.default_rng(1)
    log_probs = np.asarray(jax.nn.log_softmax(rng.normal(size=(batch, frames, classes)).astype(np.float32) * 2))
    labels = rng.integers(1, classes, size=(batch, rows)).astype(np.int32)
    args = [jnp.asarray(log_probs), jnp.zeros((batch, frames)), jnp.asarray(labels), jnp.zeros((batch, rows))]
    align = jax.jit(functools.partial(ctc_forced_align, blank_id=0))  # as jitted code calls it: unchecked
    seconds, done, out = timed(lambda: align(*args).tokens.block_until_ready(), repeats, max_seconds)
    tokens = np.asarray(out)
    results = {
        "jaxalign_ctc": {
            "seconds": seconds,
            "repeats": done,
            "device": jax.default_backend(),
            "note": "batched, jitted",
        }
    }
    try:
        import torch
        import torchaudio
        from torchaudio.functional import forced_align
    except (ImportError, OSError) as err:
        results["torchaudio_ctc"] = {"skipped": f"torchaudio is not usable here: {err}"}
        return results
    torch.set_num_threads(os.cpu_count() or 1)
    emissions = [torch.from_numpy(log_probs[b : b + 1].copy()) for b in range(batch)]
    targets = [torch.from_numpy(labels[b : b + 1].copy()) for b in range(batch)]

    def run():
        return [forced_align(e, t, blank=0)[0] for e, t in zip(emissions, targets)]

    seconds, done, out = timed(run, repeats, max_seconds)
    theirs = torch.cat(out).numpy()
    results["torchaudio_ctc"] = {
        "seconds": seconds,
        "repeats": done,
        "device": "cpu",
        "note": f"forced_align once per sequence, torch {torch.__version__}, torchaudio {torchaudio.__version__}",
        "same_tokens": bool(np.array_equal(theirs, tokens)),
        "ratio_vs_jaxalign": seconds / results["jaxalign_ctc"]["seconds"],
    }
    return results


def compare_graph(batch, frames, rows, classes, repeats):
    """The graph kernels on the grid against the grid kernels: `graph_viterbi(grid_graph)` vs
    `viterbi_align` (positions), `graph_forward` vs `forward_score` (value and gradient). The calls
    are interleaved, round after round, and each is timed by its fastest call (min-of-N: on a shared
    machine the other load only ever adds time); the medians are listed beside."""
    log_probs, labels = make_problem(batch, frames, rows, classes)
    lp, pad = jnp.asarray(log_probs), jnp.zeros((batch, frames))
    lab, lab_pad = jnp.asarray(labels), jnp.zeros(labels.shape)
    graph = jax.block_until_ready(grid_graph(lab, lab_pad))
    viterbi, graph_v = jax.jit(viterbi_align), jax.jit(graph_viterbi)
    grad_grid = jax.jit(jax.value_and_grad(lambda x: forward_score(x, pad, lab, lab_pad).sum()))
    grad_graph = jax.jit(jax.value_and_grad(lambda x: graph_forward(x, pad, graph).sum()))
    calls = {
        "viterbi_align": lambda: viterbi(lp, pad, lab, lab_pad).positions.block_until_ready(),
        "graph_viterbi": lambda: graph_v(lp, pad, graph).states.block_until_ready(),
        "forward_score+grad": lambda: jax.block_until_ready(grad_grid(lp)),
        "graph_forward+grad": lambda: jax.block_until_ready(grad_graph(lp)),
    }
    outputs = {name: call() for name, call in calls.items()}  # warm-up (compiles)
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    same = {
        "graph_viterbi": bool(np.array_equal(outputs["graph_viterbi"], outputs["viterbi_align"])),
        "graph_forward+grad": bool(
            np.allclose(outputs["graph_forward+grad"][0], outputs["forward_score+grad"][0], rtol=1e-5)
            and np.allclose(outputs["graph_forward+grad"][1], outputs["forward_score+grad"][1], atol=1e-4)
        ),
    }
    base = {"graph_viterbi": "viterbi_align", "graph_forward+grad": "forward_score+grad"}
    results = {}
    for name, t in times.items():
        results[name] = {"min_seconds": min(t), "median_seconds": statistics.median(t), "repeats": len(t)}
        if name in base:
            results[name]["ratio_min_vs_" + base[name]] = min(t) / min(times[base[name]])
            results[name]["same_result"] = same[name]
    return results


def print_graph_table(results):
    print(f"{'impl':<20} {'min ms':>8} {'median ms':>10} {'ratio (min)':>11} {'same':>5}")
    for name, r in results.items():
        ratio = next((v for k, v in r.items() if k.startswith("ratio_min")), 1.0)
        print(
            f"{name:<20} {r['min_seconds'] * 1e3:>8.2f} {r['median_seconds'] * 1e3:>10.2f} {ratio:>11.2f}"
            f" {str(r.get('same_result', '-')):>5}"
        )


CPU_PEERS = "jaxalign_graph,jaxalign_unroll1,numpy_loop,numba_loop,librosa,dynamax"
GPU_PEERS = "jaxalign_pallas,jaxalign_graph,jaxalign_unroll1,numba_cuda,torch_loop,torchaudio,numba_loop"


def describe_memory(mem, batch, frames, rows, classes, packed=False):
    mib = lambda n: n / 2**20  # noqa: E731
    return (
        f"compiled memory at B={batch} T={frames} L={rows} C={classes}: {mib(mem['total_bytes']):.1f} MiB ="
        f" arguments {mib(mem['argument_bytes']):.1f} + outputs {mib(mem['output_bytes']):.1f}"
        f" + temporaries {mib(mem['temp_bytes']):.1f}; the {'1-bit' if packed else 'uint8'} backpointers are {mib(mem['backpointer_bytes']):.1f} MiB"
        f" ({mem['backpointer_bytes'] / max(mem['total_bytes'], 1):.0%} of the total)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--max-seconds", type=float, default=10.0, help="fewer repeats (at least 3) for a peer past this"
    )
    parser.add_argument(
        "--peers", default=None, help=f"comma-separated; default on CPU {CPU_PEERS}, on GPU {GPU_PEERS}"
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the T and L sweep")
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=1,
        help="split the host into N XLA devices and add a batch-sharded jaxalign row",
    )
    parser.add_argument(
        "--graph-only", action="store_true", help="only the graph kernels vs the grid kernels, min-of-N, interleaved"
    )
    parser.add_argument("--out", default=None, help="default experiments/results/bench_viterbi.json (bench_graph.json)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = str(
            Path(__file__).parent / "results" / ("bench_graph.json" if args.graph_only else "bench_viterbi.json")
        )
    if args.graph_only:
        print(
            f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), cores: {os.cpu_count()},"
            f" B={args.batch} T={args.frames} L={args.rows} C={args.classes}, {args.repeats} interleaved rounds"
        )
        graph = compare_graph(args.batch, args.frames, args.rows, args.classes, args.repeats)
        print_graph_table(graph)
        record = {"config": vars(args), "backend": jax.default_backend(), "versions": versions(), "graph": graph}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2, default=float))
        print(f"wrote {args.out}")
        return
    if args.peers is None:
        args.peers = CPU_PEERS if jax.default_backend() == "cpu" else GPU_PEERS
    peers = [p for p in args.peers.split(",") if p]
    if jax.device_count() > 1:
        peers.insert(0, "jaxalign_sharded")

    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}) x{jax.device_count()}, cores: {os.cpu_count()}"
    )
    main_run = compare(args.batch, args.frames, args.rows, args.classes, args.repeats, peers, args.max_seconds)
    print(f"\nB={args.batch} T={args.frames} L={args.rows} C={args.classes}")
    print_table(main_run)

    bandwidth = copy_bandwidth()
    floor_bytes = args.batch * args.frames * (args.classes * 4 + args.rows * 1)
    floor_s = floor_bytes / bandwidth
    print(
        f"\nmemory floor: {floor_bytes / 2**20:.1f} MiB (log-probs read + 1-byte backpointers written)"
        f" / {bandwidth / 1e9:.1f} GB/s copy = {floor_s * 1e3:.2f} ms;"
        f" jaxalign is {main_run['jaxalign']['seconds'] / floor_s:.1f}x the floor"
    )
    memory = peak_memory_bytes(args.batch, args.frames, args.rows, args.classes)
    print(describe_memory(memory, args.batch, args.frames, args.rows, args.classes))
    memory_packed = peak_memory_bytes(args.batch, args.frames, args.rows, args.classes, packed=True)
    print(describe_memory(memory_packed, args.batch, args.frames, args.rows, args.classes, packed=True))
    peak = peak_memory_bytes(64, 2000, 200, args.classes)
    print(describe_memory(peak, 64, 2000, 200, args.classes))

    ctc = compare_ctc(args.batch, args.frames, args.rows, args.classes, args.repeats, args.max_seconds)
    print(f"\nCTC forced alignment, B={args.batch} T={args.frames} U={args.rows} C={args.classes} (blank 0):")
    print(f"{'impl':<16} {'device':>6} {'median ms':>10} {'peer/jaxalign':>13} {'same tokens':>11}  note")
    for name, r in ctc.items():
        if "seconds" not in r:
            print(f"{name:<16} {'-':>6} {'-':>10} {'-':>13} {'-':>11}  {r['skipped']}")
            continue
        ratio, same = r.get("ratio_vs_jaxalign", 1.0), r.get("same_tokens", "-")
        print(f"{name:<16} {r['device']:>6} {r['seconds'] * 1e3:>10.2f} {ratio:>13.2f} {str(same):>11}  {r['note']}")

    sweep = []
    if not args.no_sweep:
        print(f"\nlinear cost (jaxalign vs numba_loop, B={args.batch}, C={args.classes}):")
        print(f"{'T':>6} {'L':>5} {'jaxalign ms':>12} {'ns/cell':>8} {'numba ms':>9} {'ratio':>6}")
        for frames, rows in [
            (100, 60),
            (200, 60),
            (400, 60),
            (800, 60),
            (1600, 60),
            (400, 15),
            (400, 30),
            (400, 120),
            (400, 240),
        ]:
            res = compare(
                args.batch, frames, rows, args.classes, max(5, args.repeats // 3), ["numba_loop"], args.max_seconds
            )
            j, n = res["jaxalign"], res["numba_loop"]
            ns = 1e9 / j["cells_per_second"]
            numba = (
                f"{n['seconds'] * 1e3:>9.2f} {n['ratio_vs_jaxalign']:>6.1f}" if "seconds" in n else f"{'-':>9} {'-':>6}"
            )
            print(f"{frames:>6} {rows:>5} {j['seconds'] * 1e3:>12.2f} {ns:>8.2f} {numba}")
            sweep.append({"frames": frames, "rows": rows, **{k: v for k, v in res.items()}})

    record = {
        "config": vars(args),
        "device": jax.devices()[0].device_kind,
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
        "versions": versions(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "platform": platform.platform(),
        "main": main_run,
        "copy_bandwidth_bytes_per_s": bandwidth,
        "memory_floor_seconds": floor_s,
        "memory": memory,
        "memory_packed": memory_packed,
        "peak_memory_B64_T2000_L200": peak,
        "sweep": sweep,
        "ctc_forced_align": ctc,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2, default=float))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
