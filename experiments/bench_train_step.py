"""Train-step speed of the bi-GRU with and without in-step realignment, and a PyTorch peer, side by side.

    python experiments/bench_train_step.py [--sizes digits,speech] [--rounds 5] [--steps 4] [--no-torch]
    python experiments/bench_train_step.py --sizes speech --pause --variants fixed,per_step_pause_rows,per_step_pause_graph
    python experiments/bench_train_step.py --sizes speech --pronunciations --no-torch

Sizes: `digits` (the default experiment: digit strips, B=32, T=64, F=8, 2 sub-states per digit,
2-layer bidirectional GRU of 128) and `speech` (synthetic, B=32, T=200, F=40, C=40, L=30, 2x256).
jaxalign steps (`jaxalign.training.make_train_step`, Adam, clip 1.0): `fixed` (a stored alignment,
as per_epoch reads it), `per_step` (Viterbi on the stop-gradient log-probs inside the step) and
`ctc` (optax.ctc_loss with a blank output), and `seq2seq` / `seq2seq_location` (setup=seq2seq: the
same bi-GRU as the encoder, a GRU decoder over the L + 1 output positions with content / location
attention, teacher-forced cross-entropy). `--pronunciations`: `per_step_local_pause` (the default step on
targets with optional pauses, a word every 3 symbols) and `per_step_local_alternatives` (the same
with every word listed two ways, its middle symbol replaced in the second: the batch carries the
pronunciation graphs and the local aligner's loss sums over them, `align.pronunciation_sum`'s
step; the default hard choice trains the first step's program on its chosen targets and
re-chooses outside it, timed in the run's metrics.jsonl). PyTorch peers, same shapes, batch and optimizer:
`torch_fixed` (frame cross-entropy on the same stored alignment) and `torch_ctc` (torch ctc_loss),
torch.nn.GRU over packed sequences, on JAX's device: on a GPU cuDNN's GRU, on the CPU as many
threads as XLA's CPU client uses.

The variants' timing rounds are interleaved so that load from other processes falls on all of them
alike; each number is the median over rounds x steps. `compile_s`: jaxalign's lower + compile
(nothing for torch). Memory: jaxalign `peak_mb` is XLA's compiled memory analysis (arguments +
outputs + temporaries - donated aliases), `temp_mb` its temporaries alone; torch `peak_mb` is, on a
GPU, torch.cuda.max_memory_allocated over one step (parameters, gradients, Adam moments,
activations: the same measure), on the CPU the growth of the process's peak resident set over its
first two steps (gradients, Adam moments, activations, plus allocator and library overhead; not
the parameters or the batch: close to, not the same as, XLA's figure). Writes JSON.
"""

import argparse
import ctypes
import dataclasses
import gc
import json
import os
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from jaxalign import uniform_align
from jaxalign.align.grid import substate_labels
from jaxalign.config import AlignConfig, Config, ModelConfig, OptimConfig, SetupConfig, SyntheticConfig, TrainerConfig
from jaxalign.data import Batcher, DigitStripsSpec, load_digit_strips
from jaxalign.data.synthetic import SyntheticSpec, load_synthetic
from jaxalign.optim import lr_multiplier
from jaxalign.setups import make_setup
from jaxalign.training import make_train_step
from jaxalign.training.step import init_train_state

THREADS = len(os.sched_getaffinity(0))  # XLA's CPU client runs its ops on one thread per core
# torch's OpenMP threads otherwise busy-wait at every parallel region: on a 2-core machine shared
# with other jobs that made its steps 30-100x slower and erratic (seen here); set before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclasses.dataclass(frozen=True)
class Size:
    hidden: int
    layers: int
    batch: int
    frames: int  # padded T of the one bucket
    states_per_symbol: int
    data: str  # digit_strips | a key of SYNTHETIC below


SIZES = {
    "digits": Size(hidden=128, layers=2, batch=32, frames=64, states_per_symbol=2, data="digit_strips"),
    "speech": Size(hidden=256, layers=2, batch=32, frames=200, states_per_symbol=1, data="speech"),
    "large": Size(
        hidden=256, layers=2, batch=256, frames=400, states_per_symbol=2, data="large"
    ),  # the GPU size
}
SYNTHETIC = {
    # 22..30 phone-like symbols of 5-6 frames: T 110..180 padded to 200, F=40, C=40, L=30.
    "speech": SyntheticSpec(
        num_train=256,
        num_valid=0,
        num_test=0,
        num_classes=40,
        feature_dim=40,
        min_symbols=22,
        max_symbols=30,
        min_duration=5,
        max_duration=6,
    ),
    # 40..60 symbols of 5-6 frames: T 200..360 padded to 400, F=40, C=40, L=60.
    "large": SyntheticSpec(
        num_train=1024,
        num_valid=0,
        num_test=0,
        num_classes=40,
        feature_dim=40,
        min_symbols=40,
        max_symbols=60,
        min_duration=5,
        max_duration=6,
    ),
}


def make_batches(size: Size, count: int = 4):
    """`count` batches of the size's shape, each with a stored flat-start alignment."""
    if size.data == "digit_strips":
        data = load_digit_strips(DigitStripsSpec(num_train=1000, num_valid=0, num_test=0)).train
    else:
        data = load_synthetic(SYNTHETIC[size.data]).train
    batcher = Batcher(data, size.batch, num_buckets=1, bounds=[size.frames])
    batches = []
    for _ in range(count):
        batch = batcher.next_batch()
        labels, label_pad = substate_labels(batch["labels"], batch["label_paddings"], size.states_per_symbol)
        batch["fixed_positions"] = np.asarray(uniform_align(batch["logit_paddings"], label_pad).positions)
        batches.append(batch)
    return data, batches


def pause_batches(batches, every: int = 3):
    """The batches with the pause class 0 first, last and after every `every` symbols of each target."""
    out = []
    for batch in batches:
        labels, pads = np.asarray(batch["labels"]), np.asarray(batch["label_paddings"])
        rows = []
        for y in (labels[b][pads[b] == 0] for b in range(len(labels))):
            target = [0]
            for i in range(0, len(y), every):
                target += [*y[i : i + every], 0]
            rows.append(target)
        width = max(map(len, rows))
        new_labels = np.full((len(rows), width), -1, np.int32)
        for b, target in enumerate(rows):
            new_labels[b, : len(target)] = target
        out.append({**batch, "labels": new_labels, "label_paddings": (new_labels < 0).astype(np.float32)})
    return out


def with_alternatives(batches, setup, every: int = 3):
    """`pause_batches(batches, every)` with `batch["graph"]`: each word (`every` symbols of the
    target) listed as itself and with its middle symbol replaced by the next class, padded to one
    (S, K) over all the batches so that one compiled step runs them all."""
    from jaxalign.align.graph import graph_from_arcs
    from jaxalign.setups.alternatives import alternatives_graph

    layouts = []
    for batch in batches:
        for labels, pads in zip(np.asarray(batch["labels"]), np.asarray(batch["label_paddings"])):
            y = labels[pads == 0].tolist()
            prons = []
            for i in range(0, len(y), every):
                word = y[i : i + every]
                other = list(word)
                other[len(word) // 2] = (other[len(word) // 2] + 1) % setup.num_classes
                prons.append([word, other])
            layouts.append(alternatives_graph(setup, prons, 0))
    fields = [[getattr(g, name) for g in layouts] for name in ("emissions", "arcs", "start", "final")]
    graph = graph_from_arcs(*fields)
    size = len(batches[0]["labels"])
    return [
        {**batch, "graph": jax.tree.map(lambda x, i=i: x[i * size : (i + 1) * size], graph)}
        for i, batch in enumerate(pause_batches(batches, every))
    ]


def rows_route(setup):
    """`setup` searching its pause rows as before align.pause_states: the grid kernels with one
    skippable row per pause (its grid must have pause_states = 1)."""
    setup.grid_viterbi = lambda lp, pads, grid: setup.viterbi(lp, pads, *grid.kernel_args())
    setup.grid_forward = lambda lp, pads, grid: setup.forward_score(lp, pads, *grid.kernel_args())
    return setup


def bench_config(
    size: Size,
    schedule: str,
    aligner_context: int = -1,
    model_kwargs: dict | None = None,
    kernel: str = "scan",
    attention: str | None = None,
    pause_states: int = 3,
) -> Config:
    """An order_sync config of the size: bi-GRU, Adam 1e-3, no warm-up (the step as trained after it).
    With `attention` (content | location): setup=seq2seq, the same bi-GRU as its encoder and the
    shipped decoder (the schedule is then unused)."""
    model = ModelConfig(
        kind="gru", hidden=size.hidden, num_layers=size.layers, bidirectional=True, **(model_kwargs or {})
    )
    align = AlignConfig(
        schedule=schedule,
        warmup_steps=0,
        states_per_symbol=size.states_per_symbol,
        aligner_context=aligner_context,
        kernel=kernel,
        pause_states=pause_states,
    )
    return Config(
        setup=SetupConfig(name="seq2seq", attention=attention) if attention else SetupConfig(name="order_sync"),
        model=model,
        data=SyntheticConfig(),
        optim=OptimConfig(learning_rate=1e-3),
        align=align,
        trainer=TrainerConfig(),
    )


def jax_variant(
    schedule: str,
    size: Size,
    data,
    batches,
    model_kwargs: dict,
    aligner_context: int = -1,
    kernel: str = "scan",
    attention: str | None = None,
    pause: str | None = None,
    alternatives: bool = False,
):
    """(run one step and wait, {compile_s, peak_mb, temp_mb}). pause: None, "rows" or "graph" (the
    batches' class 0 is then the optional pause, searched by that route); alternatives: the batches
    carry pronunciation graphs (`with_alternatives`)."""
    config = bench_config(size, schedule, aligner_context, model_kwargs, kernel, attention, 1 if pause == "rows" else 3)
    setup = make_setup(config, data.num_classes, None if pause is None else 0)
    if pause == "rows":
        setup = rows_route(setup)
    if alternatives:
        batches = with_alternatives(batches, setup)  # the batches as they were, before pause_batches
    graphdef, optimizer, state = init_train_state(config, setup, data.feature_dim)
    key = jax.random.key(0)
    tic = time.perf_counter()
    train_step = make_train_step(graphdef, optimizer, setup, lr_multiplier(config.optim.schedule, config.trainer.steps))
    step = train_step.lower(state, batches[0], key).compile()
    compile_s = time.perf_counter() - tic
    memory = step.memory_analysis()
    peak = (
        memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        + memory.temp_size_in_bytes
        - memory.alias_size_in_bytes
    )
    holder = {"state": state, "i": 0}

    def run():
        holder["state"], metrics = step(holder["state"], batches[holder["i"] % len(batches)], key)
        holder["i"] += 1
        jax.block_until_ready(metrics)

    return run, {"compile_s": compile_s, "peak_mb": peak / 2**20, "temp_mb": memory.temp_size_in_bytes / 2**20}


def torch_variant(loss: str, size: Size, data, batches):
    """The PyTorch peer: (run one step and wait, {}) or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    device = torch.device("cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu")
    spec = make_setup(bench_config(size, "ctc" if loss == "ctc" else "per_epoch"), data.num_classes)
    rnn = torch.nn.GRU(data.feature_dim, size.hidden, size.layers, bidirectional=True, batch_first=True).to(device)
    head = torch.nn.Linear(2 * size.hidden, spec.num_outputs).to(device)
    params = [*rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    tensors = []
    for batch in batches:
        lengths = (batch["logit_paddings"] == 0).sum(1)
        labels, label_pad = (
            np.asarray(a) for a in substate_labels(batch["labels"], batch["label_paddings"], size.states_per_symbol)
        )
        positions = batch["fixed_positions"]
        symbols = np.where(positions >= 0, np.take_along_axis(labels, np.maximum(positions, 0), axis=1), -100)
        tensors.append(
            {
                "features": torch.from_numpy(batch["features"]).to(device),
                "lengths": torch.from_numpy(lengths),  # lengths stay on the host, as pack_padded_sequence wants
                "labels": torch.from_numpy(np.maximum(labels, 0)).long().to(device),
                "label_lengths": torch.from_numpy((label_pad == 0).sum(1)).to(device),
                "symbols": torch.from_numpy(symbols).long().to(device),
            }
        )

    def loss_fn(b):
        packed = pack_padded_sequence(b["features"], b["lengths"], batch_first=True, enforce_sorted=False)
        hidden, _ = pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=size.frames)
        log_probs = torch.log_softmax(head(hidden), dim=-1)
        frames = int(b["lengths"].sum())
        if loss == "ctc":
            return (
                torch.nn.functional.ctc_loss(
                    log_probs.transpose(0, 1),
                    b["labels"],
                    b["lengths"],
                    b["label_lengths"],
                    blank=spec.blank_id,
                    reduction="sum",
                    zero_infinity=True,
                )
                / frames
            )
        return torch.nn.functional.nll_loss(log_probs.flatten(0, 1), b["symbols"].flatten(), reduction="sum") / frames

    holder = {"i": 0}

    def run():
        optimizer.zero_grad(set_to_none=True)
        value = loss_fn(tensors[holder["i"] % len(tensors)])
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        holder["i"] += 1
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type != "cuda":  # resident-set growth over the first two steps
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so earlier variants' pages don't count
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current size
        before = _resident_mb("VmRSS")
        for _ in range(2):
            run()
        return run, {"peak_mb": _resident_mb("VmHWM") - before}
    run()  # the first step allocates the Adam moments
    torch.cuda.reset_peak_memory_stats()
    run()
    return run, {"peak_mb": torch.cuda.max_memory_allocated() / 2**20}


def _resident_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(variants: dict, rounds: int, steps: int) -> dict:
    """Median seconds per step of each variant, timing rounds interleaved across the variants."""
    for run in variants.values():
        run()  # warm-up (torch's first step allocates the Adam moments)
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            for _ in range(steps):
                tic = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - tic)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_size(size_name: str, args) -> dict:
    size = SIZES[size_name]
    data, batches = make_batches(size)
    model_kwargs = {"unroll": args.unroll, "compute_dtype": args.compute_dtype}
    runs, info = {}, {}
    # per_step_local: the default (local aligner, align.aligner_context=3, plus the model: aligner_mix=1);
    # *_pallas: the same steps with align.kernel=pallas (the Viterbi as one Pallas kernel; timed on GPUs only).
    variants = [
        ("fixed", "per_epoch", -1),
        ("per_step", "per_step", -1),
        ("per_step_local", "per_step", 3),
        ("ctc", "ctc", -1),
        ("seq2seq", "per_step", -1),  # setup=seq2seq: this bi-GRU as the encoder, a GRU decoder with content attention
        ("seq2seq_location", "per_step", -1),  # the same with setup.attention=location
    ]
    if args.pallas:
        variants += [("per_step_pallas", "per_step", -1), ("per_step_local_pallas", "per_step", 3)]
    if args.pause:
        variants += [(f"{s}_pause_{route}", s, -1) for s in ("per_step", "full_sum") for route in ("rows", "graph")]
    if args.pronunciations:
        variants += [("per_step_local_pause", "per_step", 3), ("per_step_local_alternatives", "per_step", 3)]
    if args.variants:
        variants = [v for v in variants if v[0] in args.variants.split(",")]
    failed = {}
    with_pauses = pause_batches(batches)
    for name, schedule, context in variants:
        kernel = "pallas" if name.endswith("_pallas") else "scan"
        attention = {"seq2seq": "content", "seq2seq_location": "location"}.get(name)
        pause = name.rsplit("_", 1)[1] if "_pause_" in name else None
        if name in ("per_step_local_pause", "per_step_local_alternatives"):
            pause = "graph"
        try:
            runs[name], info[name] = jax_variant(
                schedule,
                size,
                data,
                batches if name == "per_step_local_alternatives" else with_pauses if pause else batches,
                model_kwargs,
                context,
                kernel,
                attention,
                pause,
                alternatives=name == "per_step_local_alternatives",
            )
        except Exception as err:  # noqa: BLE001 - a Pallas kernel that does not build must not cost the other rows
            if kernel == "scan":
                raise
            failed[name] = {"error": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
            print(f"{name}: did not build: {failed[name]['error']}")
    for loss in ("fixed", "ctc") if args.torch else ():
        made = torch_variant(loss, size, data, batches)
        if made is None:
            print("torch is not installed: PyTorch peers skipped (pip install -e '.[bench]')")
            break
        runs[f"torch_{loss}"], info[f"torch_{loss}"] = made
    seconds = measure(runs, args.rounds, args.steps)
    frames = sum(int((b["logit_paddings"] == 0).sum()) for b in batches) / len(batches)
    results = {}
    for name, s in seconds.items():
        results[name] = {
            "ms": 1e3 * s,
            "steps_per_s": 1 / s,
            "frames_per_s": frames / s,
            **info[name],
            "vs_fixed": s / seconds["fixed"],
        }
        for peer in ("torch_fixed", "torch_ctc"):
            if peer in seconds:
                results[name][f"speedup_vs_{peer}"] = seconds[peer] / s
    results.update(failed)
    return {
        "size": dataclasses.asdict(size),
        "feature_dim": data.feature_dim,
        "num_classes": data.num_classes,
        "label_len": batches[0]["labels"].shape[1],
        "valid_frames_per_batch": frames,
        "results": results,
    }


def print_table(name: str, out: dict):
    s = out["size"]
    print(
        f"\n{name}: bi-GRU {s['layers']}x{s['hidden']}, B={s['batch']}, T={s['frames']}, F={out['feature_dim']}, "
        f"C={out['num_classes']}, L={out['label_len']}, k={s['states_per_symbol']}"
    )
    print(
        f"{'step':<28} {'ms':>8} {'steps/s':>8} {'frames/s':>9} {'vs fixed':>8} {'torch_fixed/x':>13} {'compile s':>9} {'peak MB':>8}"
    )
    for step, r in out["results"].items():
        if "error" in r:
            print(f"{step:<28} ERROR {r['error']}")
            continue
        vs_torch = r.get("speedup_vs_torch_fixed", float("nan"))
        print(
            f"{step:<28} {r['ms']:>8.1f} {r['steps_per_s']:>8.2f} {r['frames_per_s']:>9.0f} {r['vs_fixed']:>8.3f} "
            f"{vs_torch:>13.2f} {r.get('compile_s', float('nan')):>9.1f} {r['peak_mb']:>8.1f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="digits,speech", help=f"comma-separated, from {list(SIZES)}")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant per round")
    parser.add_argument("--unroll", type=int, default=0, help="jaxalign scan unroll; 0: the backend's default")
    parser.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--no-torch", dest="torch", action="store_false")
    parser.add_argument(
        "--pallas",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the per_step steps with align.kernel=pallas; default: on a GPU only (elsewhere it is interpreted)",
    )
    parser.add_argument("--pause", action="store_true", help="add the steps on targets with optional pauses")
    parser.add_argument(
        "--pronunciations", action="store_true", help="add the default step with and without pronunciation graphs"
    )
    parser.add_argument("--variants", default="", help="comma-separated step names to time (default: all)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_train_step.json"))
    args = parser.parse_args(argv)
    if args.pallas is None:
        args.pallas = jax.default_backend() == "gpu"
    device = jax.devices()[0].device_kind
    print(f"device: {device}; {THREADS} threads for XLA and torch")
    sizes = {name: bench_size(name, args) for name in args.sizes.split(",")}
    for name, out in sizes.items():
        print_table(name, out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    Path(args.out).write_text(
        json.dumps({"config": config, "device": device, "threads": THREADS, "sizes": sizes}, indent=2) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
