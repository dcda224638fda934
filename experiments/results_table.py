"""Results table (and a learning-curve figure) rebuilt from run directories.

    python experiments/results_table.py outputs/*/* [--plot curves.png] [--json results.json]

Each run directory is one `jaxalign-train` run: its `.hydra/config.yaml` gives the setup and its
`metrics.jsonl` the test line and the validation curve. Wall-clock time is the run's "timing" lines.
"""

import argparse
import json
from pathlib import Path

import yaml

COLUMNS = ["label_error_rate", "accuracy", "frame_accuracy", "alignment_accuracy", "boundary_error"]


def read_run(run_dir: Path) -> dict | None:
    metrics_path, config_path = run_dir / "metrics.jsonl", run_dir / ".hydra" / "config.yaml"
    if not metrics_path.exists() or not config_path.exists():
        return None
    lines = [json.loads(ln) for ln in metrics_path.read_text().splitlines() if ln]
    config = yaml.safe_load(config_path.read_text())
    test = next((ln for ln in reversed(lines) if ln["split"] == "test"), None)
    seconds = sum(ln.get("seconds", 0.0) for ln in lines if ln["split"] == "timing" and ln.get("event") == "end")
    model = config["model"]
    return {
        "run": str(run_dir),
        "setup": config["setup"]["name"],
        "data": config["data"]["name"],
        "model": f"{'bi' if model['bidirectional'] else ''}{model['kind']}{model['hidden']}x{model['num_layers']}",
        "schedule": config["align"]["schedule"] if config["setup"]["name"] == "order_sync" else "-",
        "k": config["align"]["states_per_symbol"] if config["setup"]["name"] == "order_sync" else "-",
        "steps": config["trainer"]["steps"],
        "seconds": seconds,
        "test": test or {},
        "valid_curve": [ln for ln in lines if ln["split"] == "valid"],
        "status": "DONE" if (run_dir / "DONE").exists() else "FAILED" if (run_dir / "FAILED").exists() else "unfinished",
    }


def fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--plot", type=Path, help="write validation curves to this PNG")
    parser.add_argument("--json", type=Path, help="write the table as JSON")
    args = parser.parse_args(argv)
    rows = [r for r in (read_run(p) for p in args.runs) if r]
    head = ["setup", "model", "schedule", "k", "steps", "seconds", *COLUMNS, "status"]
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(fmt(r[h]) if h in r else fmt(r["test"].get(h)) for h in head))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        for r in rows:
            label = f"{r['setup']} {r['schedule']} k={r['k']}"
            for ax, key in zip(axes, ("label_error_rate", "alignment_accuracy")):
                points = [(ln["step"], ln[key]) for ln in r["valid_curve"] if key in ln]
                if points:
                    ax.plot(*zip(*points), marker="o", label=label)
                    ax.set_title(f"validation {key}")
                    ax.set_xlabel("step")
        axes[0].legend(fontsize=7)
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
