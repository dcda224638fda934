"""Markdown summary of one `experiments/gpu_check.sh` run, from its step table and the JSON files the
benchmarks wrote. Missing or broken files become a line saying so, never an exception.

    python experiments/gpu_summary.py --results experiments/results --suffix _gpu --out experiments/results/gpu_check.md
"""

import argparse
import json
from pathlib import Path

SIZES = ("small", "large", "long")


def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def ms(seconds):
    return f"{seconds * 1e3:.2f}"


def steps_table(steps_tsv):
    lines = ["| step | status | seconds | command |", "|---|---|---|---|"]
    try:
        rows = [line.split("\t", 3) for line in Path(steps_tsv).read_text().splitlines() if line.strip()]
    except OSError:
        return ["(no step table)"]
    for name, status, seconds, command in rows:
        command = command.replace("|", "\\|")  # a pipe would end the table cell
        lines.append(f"| {name} | {status} | {seconds} | `{command}` |")
    return lines


def viterbi_section(results, suffix):
    lines = ["## Viterbi (`experiments/bench_viterbi.py`)", ""]
    for size in SIZES:
        record = load(results / f"bench_viterbi{suffix}_{size}.json")
        if record is None:
            lines += [f"{size}: no result (see the step table)", ""]
            continue
        c = record["config"]
        lines += [
            f"### B={c['batch']} T={c['frames']} L={c['rows']} C={c['classes']} on {record['device']} ({record['backend']})",
            "",
            "| impl | device | median ms | M cells/s | / jaxalign | same score | same positions | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in record["main"].items():
            if "seconds" not in r:
                lines.append(
                    f"| {name} | – | – | – | – | – | – | {r.get('skipped') or 'error: ' + r.get('error', '?')} |"
                )
                continue
            lines.append(
                f"| {name} | {r['device']} | {ms(r['seconds'])} | {r['cells_per_second'] / 1e6:.0f} | {r['ratio_vs_jaxalign']:.2f}"
                f" | {r['same_score']} | {r['same_positions']} | {r['note']} ({r['repeats']} repeats) |"
            )
        mem = record.get("memory")
        if mem:
            mib = lambda n: f"{n / 2**20:.1f}"  # noqa: E731
            lines += [
                "",
                f"Compiled memory (XLA memory_analysis): arguments {mib(mem['argument_bytes'])} MiB, outputs"
                f" {mib(mem['output_bytes'])} MiB, temporaries {mib(mem['temp_bytes'])} MiB, total {mib(mem['total_bytes'])} MiB;"
                f" uint8 backpointers {mib(mem['backpointer_bytes'])} MiB"
                f" ({mem['backpointer_bytes'] / max(mem['total_bytes'], 1):.0%} of the total).",
            ]
        lines.append("")
    return lines


def forward_section(results, suffix):
    lines = [
        "## forward_score (`experiments/bench_forward.py`)",
        "",
        "| size | impl | value ms | temp MiB | value+grad ms | temp MiB |",
        "|---|---|---|---|---|---|",
    ]
    for size in SIZES[:2]:
        record = load(results / f"bench_forward{suffix}_{size}.json")
        if record is None:
            lines.append(f"| {size} | no result | | | | |")
            continue
        c = record["config"]
        for name, r in record["results"].items():
            if "error" in r:
                lines.append(f"| B={c['batch']} T={c['frames']} L={c['rows']} | {name} | error: {r['error']} | | | |")
                continue
            v, g = r["value"], r["value_and_grad"]
            lines.append(
                f"| B={c['batch']} T={c['frames']} L={c['rows']} | {name} | {ms(v['seconds'])} | {v['temp_bytes'] / 2**20:.1f}"
                f" | {ms(g['seconds'])} | {g['temp_bytes'] / 2**20:.1f} |"
            )
    return lines + [""]


def train_step_section(results, suffix):
    lines = ["## Train step (`experiments/bench_train_step.py`)", ""]
    for size in ("small", "large", "speech"):
        record = load(results / f"bench_train_step{suffix}_{size}.json")
        if record is None:
            lines.append(f"- {size}: no result (see the step table)")
            continue
        config = ", ".join(f"{k}={v}" for k, v in record.get("config", {}).items() if k != "out")
        for shape, out in record.get("sizes", {}).items():
            parts = [
                f"{name} {r['ms']:.2f} ms ({r['vs_fixed']:.2f}x fixed)"
                if "ms" in r
                else f"{name} error: {r.get('error', '?')}"
                for name, r in out.get("results", {}).items()
            ]
            lines.append(f"- {size} = {shape} ({config}) on {record.get('device', '?')}: " + "; ".join(parts))
    return lines + [""]


def default_run_section(run_dir, steps_tsv):
    lines = ["## Default training run (`python -m jaxalign.train`)", ""]
    wall = None
    try:
        for line in Path(steps_tsv).read_text().splitlines():
            fields = line.split("\t")
            if fields[0] == "train_default":
                wall = f"{fields[2]} s ({fields[1]})"
    except OSError:
        pass
    lines.append(f"- wall time: {wall or 'not run'}")
    test = None
    try:
        for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
            entry = json.loads(line)
            if entry.get("split") == "test":
                test = entry
    except (OSError, ValueError):
        pass
    if test:
        keys = [
            k
            for k in ("step", "label_error_rate", "frame_accuracy", "alignment_accuracy", "boundary_error")
            if k in test
        ]
        lines.append(
            "- last test line: "
            + ", ".join(f"{k} {test[k]:.4g}" if isinstance(test[k], float) else f"{k} {test[k]}" for k in keys)
        )
    else:
        lines.append("- no test line in metrics.jsonl")
    env = load(Path(run_dir) / "environment.json")
    if env:
        lines.append(
            f"- environment.json: {env.get('device_count', '?')} x {env.get('device_kind', '?')} ({env.get('backend', '?')}), jax {env.get('jax', '?')}"
        )
    return lines + [""]


def verdict(ratio, limit):
    return "–" if ratio is None else ("met" if ratio <= limit else "NOT met")


def targets_section(results, suffix, steps_tsv, judged=True):
    """Issue 10's GPU targets, each as measured in this run (ratios of times taken side by side);
    judged=False (a QUICK dry run at tiny sizes, on a CPU) shows the numbers without verdicts."""
    lines = ["## Targets", "", "| target | measured | met? |", "|---|---|---|"]
    for size, limit in (("large", 1.5), ("small", 3.0)):
        main = (load(results / f"bench_viterbi{suffix}_{size}.json") or {}).get("main", {})
        kernel = main.get("numba_cuda", {}).get("seconds")
        ours = {
            n: main[n]["seconds"]
            for n in ("jaxalign", "jaxalign_pallas")
            if "seconds" in main.get(n, {}) and main[n].get("same_score")
        }
        best = min(ours, key=ours.get) if ours else None
        ratio = ours[best] / kernel if best and kernel else None
        shown = (
            f"{best} {ms(ours[best])} ms / plain CUDA kernel {ms(kernel)} ms = {ratio:.2f}x" if ratio else "no result"
        )
        lines.append(f"| Viterbi {size}: <= {limit}x the plain CUDA kernel | {shown} | {verdict(ratio, limit)} |")
    for size in ("small", "large"):
        record = load(results / f"bench_train_step{suffix}_{size}.json") or {}
        for shape, out in record.get("sizes", {}).items():
            r = out.get("results", {})
            for name in ("per_step", "per_step_local", "per_step_pallas", "per_step_local_pallas"):
                ratio = r[name]["ms"] / r["torch_ctc"]["ms"] if "ms" in r.get(name, {}) and "torch_ctc" in r else None
                shown = (
                    f"{r[name]['ms']:.2f} ms / {r['torch_ctc']['ms']:.2f} ms = {ratio:.2f}x"
                    if ratio
                    else r.get(name, {}).get("error", "no result")
                )
                lines.append(
                    f"| `{name}` step at {shape}: <= 1.0x PyTorch cuDNN CTC | {shown} | {verdict(ratio, 1.0)} |"
                )
    for step, what in (
        ("train_default", "default run"),
        ("train_default_pallas", "default run with `align.kernel=pallas`"),
    ):
        wall = step_seconds(steps_tsv, step)
        shown = f"{wall:.1f} s (process start to exit)" if wall else "no result"
        lines.append(f"| {what} <= 20 s | {shown} | {verdict(wall / 20 if wall else None, 1.0)} |")
    if not judged:
        lines = [
            line.rsplit("|", 2)[0] + "| – (QUICK: not judged) |"
            if line.startswith("| ") and not line.startswith("| target")
            else line
            for line in lines
        ]
    return lines + [""]


def step_seconds(steps_tsv, name):
    """Seconds of step `name` in the step table if it ran to the end, else None."""
    try:
        for line in Path(steps_tsv).read_text().splitlines():
            fields = line.split("\t")
            if fields[0] == name and fields[1] == "ok":
                return float(fields[2])
    except (OSError, ValueError, IndexError):
        pass
    return None


def tests_section(log):
    try:
        tail = [line for line in Path(log).read_text().splitlines() if line.strip()][-3:]
    except OSError:
        tail = ["no log"]
    return ["## Tests", "", "```", *tail, "```", ""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, type=Path)
    parser.add_argument("--suffix", default="_gpu")
    parser.add_argument("--steps", required=True, help="tab-separated step table written by gpu_check.sh")
    parser.add_argument("--logs", required=True, type=Path)
    parser.add_argument("--run-dir", required=True, type=Path, help="copy of the default run's small files")
    parser.add_argument("--header", default="", help="lines to put under the title")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--not-judged", dest="judged", action="store_false", help="a dry run: no verdicts on the targets"
    )
    args = parser.parse_args(argv)
    lines = [
        "# GPU check (`experiments/gpu_check.sh`)",
        "",
        *args.header.splitlines(),
        "",
        *steps_table(args.steps),
        "",
    ]
    lines += targets_section(args.results, args.suffix, args.steps, args.judged)
    lines += viterbi_section(args.results, args.suffix)
    lines += forward_section(args.results, args.suffix)
    lines += train_step_section(args.results, args.suffix)
    lines += default_run_section(args.run_dir, args.steps)
    lines += tests_section(args.logs / "tests.log")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
