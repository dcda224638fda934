"""Where a trained run's boundary errors come from: per phone, on the test split of its own data.

    python experiments/boundary_report.py RUN_DIR [--split test] [--top 12] [--out FILE.json]

Force-aligns the split's labels with the run (`jaxalign.load_run(...).align`; for a run without
alignments of its own, e.g. the supervised `setup=time_sync` frame classifier, `viterbi_align` over
its per-frame log-probabilities) and compares each boundary with the true one (signed error, predicted - true frames; < 0 = the path moves on early).
Prints the phones whose boundaries (entering them) carry most of the total |error|, and two
diagnostics of how much of the error is a constant offset per phone:
- `offset_removed`: the mean |error| left after subtracting each entered phone's median error. A
  labelling convention (e.g. where a stop's closure starts) that the aligner cannot know shows up as
  such an offset; it is an oracle measured on the same split, not a method.
- `edges`: the mean |error| of the first and last boundary of each sequence (silence edges) alone.
"""

import argparse
import collections
import json
from pathlib import Path

import jax
import numpy as np

import jaxalign
from jaxalign.data import Batcher, SequenceData
from jaxalign.data.load import load_splits
from jaxalign.decoding.metrics import AlignmentScores, boundaries, signed_boundary_errors
from jaxalign.training.outputs import per_example


def forced_alignments(run, data) -> list[np.ndarray]:
    """(T_i,) row of each frame: the run's own alignment, else the Viterbi path over its outputs."""
    if run.setup.aligns:
        return run.align(data.features, data.labels)
    scored = SequenceData(run.log_probs(data.features), data.labels, None, data.vocab)
    batcher = Batcher(scored, run.config.trainer.batch_size, num_buckets=run.config.trainer.num_buckets)

    @jax.jit
    def align(batch):
        args = batch["features"], batch["logit_paddings"], batch["labels"], batch["label_paddings"]
        return {"positions": jaxalign.viterbi_align(*args).positions}

    positions = [None] * len(scored)
    for i, example in per_example(align, batcher):
        positions[i] = example["positions"]
    return positions


def boundary_errors(run, data) -> tuple[dict, list[tuple[str, int, bool]]]:
    """Alignment scores of the split, and one (entered symbol, signed error, is an edge) per
    boundary of the sequences whose path enters the same rows as the truth."""
    scores, errors = AlignmentScores(), []
    for path, truth, labels in zip(forced_alignments(run, data), data.alignments, data.labels):
        scores.add(path, truth)
        signed = signed_boundary_errors(path, truth)
        if signed is None:
            continue
        for n, (error, row) in enumerate(zip(signed, truth[boundaries(truth)])):
            errors.append((data.vocab[labels[row]], int(error), n in (0, len(signed) - 1)))
    return scores.result(), errors


def summarise(errors: list[tuple[str, int, bool]], top: int) -> dict:
    by_symbol = collections.defaultdict(list)
    for symbol, error, _ in errors:
        by_symbol[symbol].append(error)
    total = sum(abs(e) for _, e, _ in errors)
    rows = [
        {
            "symbol": s,
            "n": len(es),
            "mean_abs": float(np.mean(np.abs(es))),
            "mean": float(np.mean(es)),
            "share_of_error": float(np.sum(np.abs(es)) / max(total, 1)),
        }
        for s, es in by_symbol.items()
    ]
    rows.sort(key=lambda r: -r["share_of_error"])
    residual = [abs(e - np.median(by_symbol[s])) for s, e, _ in errors]
    edges = [abs(e) for _, e, edge in errors if edge]
    return {
        "boundaries": len(errors),
        "mean_abs": float(np.mean([abs(e) for _, e, _ in errors])),
        "offset_removed": float(np.mean(residual)),
        "edges": float(np.mean(edges)) if edges else None,
        "inner": float(np.mean([abs(e) for _, e, edge in errors if not edge])),
        "by_symbol": rows[:top],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--top", type=int, default=12, help="phones listed")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    args = parser.parse_args(argv)

    run = jaxalign.load_run(args.run_dir)
    data = getattr(load_splits(run.config.data), args.split)
    if data.alignments is None:
        parser.error(f"{run.config.data.name} has no true alignments to compare with")
    scores, errors = boundary_errors(run, data)
    report = {"run_dir": str(args.run_dir), "split": args.split, "scores": scores, **summarise(errors, args.top)}

    print(
        f"{args.run_dir} ({args.split}): alignment {scores['alignment_accuracy']:.1%}, {report['boundaries']} boundaries, "
        f"mean |error| {report['mean_abs']:.2f} frames (edges {report['edges']:.2f}, inner {report['inner']:.2f}); "
        f"with each phone's median offset removed {report['offset_removed']:.2f}"
    )
    print("| entered phone | n | mean abs error | mean signed error | share of total abs error |")
    print("|---|---|---|---|---|")
    for r in report["by_symbol"]:
        print(f"| {r['symbol']} | {r['n']} | {r['mean_abs']:.2f} | {r['mean']:+.2f} | {r['share_of_error']:.1%} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
