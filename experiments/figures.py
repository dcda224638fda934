"""Every figure and table of a sweep, rebuilt from its run directories alone (it never trains).

    python experiments/figures.py SWEEP_DIR [SWEEP_DIR ...] [--out DIR] [--by KEY ...] [--no-alignment]

A run directory is any folder under SWEEP_DIR holding `metrics.jsonl`. Runs are grouped by the
swept settings: the overrides in `.hydra/overrides.yaml` whose values differ between runs, seed
excluded (or the config keys given with --by); seeds are aggregated within a group. Writes into
DIR (default SWEEP_DIR/figures):

    results.md, results.csv   final test metrics and wall time per group: mean ± std and n
    runs.csv                  one row per run, failed and unfinished ones included
    curves.png                validation alignment accuracy and label error rate against step, one
                              line per group: mean over seeds, shaded min-max
    churn.png                 alignment churn against step: of the stored training alignments at
                              each realignment ("realign" lines), of the validation alignments
                              between evaluations ("valid" lines)
    alignment/GROUP_stepS.png the probability table of a test sequence with its Viterbi path at each
                              kept checkpoint (trainer.keep_checkpoints) of one run per group

Only finished runs (with DONE) enter the tables and curves; failed (FAILED) and unfinished runs are
named on stderr and in results.md. Running it twice writes byte-identical files.
"""

import argparse
import re
import sys
from pathlib import Path

import matplotlib
import matplotlib.lines
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from jaxalign.aligner import run as inference  # noqa: E402
from jaxalign.experiment import results  # noqa: E402

PNG = {"dpi": 100, "metadata": {"Software": None}}  # no version stamp: identical bytes on every run


def plot_groups(ax, groups, split: str, metric: str) -> bool:
    """One line per group (mean over its runs) with the min-max spread shaded, each group in the
    same colour in every panel; False if no run has the metric."""
    drawn = False
    for i, (_, runs) in enumerate(groups):
        points = results.curve(runs, split, metric)
        if points is None:
            continue
        steps, mean, low, high = points
        color = plt.cm.tab10(i % 10)
        ax.plot(steps, mean, marker="o", ms=3, color=color)
        ax.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
        drawn = True
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    return drawn


def legend_below(fig, groups) -> None:
    """One legend under the panels, in group order (a group has the same colour in every figure)."""
    handles = [
        matplotlib.lines.Line2D([], [], color=plt.cm.tab10(i % 10), marker="o", ms=3) for i in range(len(groups))
    ]
    labels = [f"{label} (n={len(runs)})" for label, runs in groups]
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 2 if max(map(len, labels)) > 30 else 4),
        fontsize=8,
    )


def empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def curves_figure(groups, path: Path) -> None:
    """Validation alignment accuracy and label error rate against step (frame accuracy and accuracy
    where the data has no true segmentation)."""
    runs = [run for _, members in groups for run in members]
    present = {key for run in runs for line in run.split("valid") for key in line}
    wanted = (
        ["alignment_accuracy", "label_error_rate"]
        if "alignment_accuracy" in present
        else ["frame_accuracy", "accuracy", "label_error_rate"]
    )
    metrics = [m for m in wanted if m in present] or ["label_error_rate"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 5), constrained_layout=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        if plot_groups(ax, groups, "valid", metric):
            ax.set_title(f"validation {metric.replace('_', ' ')}")
        else:
            empty(ax, f"no validation {metric} in these runs")
    legend_below(fig, groups)
    fig.savefig(path, **PNG)
    plt.close(fig)


def churn_figure(groups, path: Path) -> None:
    """Fraction of frames whose aligned row moved: training set at each stored realignment, and the
    validation set since the previous evaluation."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), constrained_layout=True)
    panels = [
        ("realign", "training set, at each realignment",
         "no realignment lines:\nonly per_epoch and realign_list\nrealign a stored training set"),
        ("valid", "validation set, since the previous evaluation", "no validation alignment churn\nin these runs"),
    ]  # fmt: skip
    for ax, (split, title, missing) in zip(axes, panels):
        if plot_groups(ax, groups, split, "alignment_churn"):
            ax.set_title(title)
            ax.set_ylabel("alignment churn (fraction of frames moved)")
        else:
            empty(ax, missing)
    legend_below(fig, groups)
    fig.savefig(path, **PNG)
    plt.close(fig)


def alignment_figures(groups, folder: Path) -> bool:
    """The alignment of one run per group (its lowest seed) at every kept checkpoint, drawn by
    jaxalign.aligner.plot_run_alignment; returns False if a figure failed."""
    ok = True
    for label, runs in groups:
        run = min(runs, key=lambda r: results.natural_key(str(r.seed)))
        slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", label)
        for step in run.checkpoint_steps():
            out = folder / f"{slug}_step{step:06d}.png"
            try:
                inference.plot_run_alignment(run.path, out, step=step)
            except Exception as err:  # one bad checkpoint must not cost the other figures
                print(
                    f"figures.py: could not draw the alignment of {run.name} at step {step}: {type(err).__name__}: {err}",
                    file=sys.stderr,
                )
                ok = False
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweep_dirs", nargs="+", type=Path, metavar="SWEEP_DIR", help="folders searched for run directories"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: SWEEP_DIR/figures)")
    parser.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="KEY",
        help="group by this config key instead of the swept overrides (repeatable)",
    )
    parser.add_argument(
        "--no-alignment", action="store_true", help="skip the alignment figures (the only part that loads checkpoints)"
    )
    args = parser.parse_args(argv)

    runs = results.find_runs(args.sweep_dirs)
    where = " ".join(str(d) for d in args.sweep_dirs)
    if not runs:
        print(f"figures.py: no run directories (folders holding metrics.jsonl) under {where}", file=sys.stderr)
        return 2
    for run in runs:
        if run.status == "failed":
            print(f"figures.py: run {run.name} FAILED ({run.reason}); left out", file=sys.stderr)
        elif run.status == "unfinished":
            print(f"figures.py: run {run.name} is unfinished (no DONE); left out", file=sys.stderr)
    finished = [r for r in runs if r.status == "done"]
    if not finished:
        print(f"figures.py: none of the {len(runs)} runs under {where} finished (no DONE file)", file=sys.stderr)
        return 1

    keys = args.by or results.swept_keys(runs)
    out = args.out or args.sweep_dirs[0] / "figures"
    out.mkdir(parents=True, exist_ok=True)
    rows = results.summarize(runs, keys)
    (out / "results.md").write_text(results.to_markdown(rows, keys, runs))
    (out / "results.csv").write_text(results.to_csv(rows, keys))
    (out / "runs.csv").write_text(results.runs_csv(runs, keys))
    groups = [(results.group_label(keys, values), members) for values, members in results.group_runs(finished, keys)]
    curves_figure(groups, out / "curves.png")
    churn_figure(groups, out / "churn.png")
    ok = args.no_alignment or alignment_figures(groups, out / "alignment")
    print(
        f"figures.py: {len(finished)} finished runs in {len(groups)} groups by {', '.join(keys) or '(nothing swept)'} -> {out}",
        file=sys.stderr,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
