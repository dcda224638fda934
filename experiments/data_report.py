"""Sizes of the built-in data sets, batcher throughput, and a picture of a few digit strips.

The spoken_words set is synthesised on first use (about a minute) and cached (see its module).

    python experiments/data_report.py [--out experiments/results]

Writes `digit_strips.png` (eight test strips, true segment boundaries in red) and `data_report.json`.
"""

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxalign.config import TrainerConfig
from jaxalign.data import Batcher, load_digit_strips, load_spoken_words, load_synthetic  # noqa: E402


def describe(splits) -> dict:
    out = {}
    for name in ("train", "valid", "test"):
        data = getattr(splits, name)
        t, l = data.frame_lengths(), data.label_lengths()
        out[name] = {
            "examples": len(data),
            "frames": int(t.sum()),
            "frames_min_mean_max": [int(t.min()), float(t.mean()), int(t.max())],
            "labels_min_mean_max": [int(l.min()), float(l.mean()), int(l.max())],
        }
    return out


def throughput(data, seconds=3.0) -> dict:
    """Training batches per second with the shipped trainer settings (batch size, buckets)."""
    trainer = TrainerConfig()
    batcher = Batcher(data, trainer.batch_size, num_buckets=trainer.num_buckets)
    frames = batches = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = batcher.next_batch()
        frames += int((batch["logit_paddings"] == 0).sum())
        batches += 1
    elapsed = time.perf_counter() - start
    return {"frames_per_second": frames / elapsed, "batches_per_second": batches / elapsed, "buckets": batcher.bounds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    strips = load_digit_strips()
    build_seconds = time.perf_counter() - tic
    synthetic = load_synthetic()
    tic = time.perf_counter()
    spoken = load_spoken_words()
    spoken_seconds = time.perf_counter() - tic
    report = {
        "digit_strips": {**describe(strips), "build_seconds": build_seconds, "loader": throughput(strips.train)},
        "synthetic": {**describe(synthetic), "loader": throughput(synthetic.train)},
        "spoken_words": {
            **describe(spoken),
            "phones": len(spoken.train.vocab),
            "build_or_cache_seconds": spoken_seconds,
        },
    }
    fig, axes = plt.subplots(8, 1, figsize=(10, 9), constrained_layout=True)
    for ax, i in zip(axes, range(8)):
        x, a, y = strips.test.features[i], strips.test.alignments[i], strips.test.labels[i]
        ax.imshow(x.T, cmap="Greys", aspect="auto", interpolation="nearest")
        for b in np.flatnonzero(np.diff(a)) + 1:
            ax.axvline(b - 0.5, color="tab:red", lw=1)
        ax.set_yticks([])
        ax.set_ylabel(" ".join(map(str, y)), rotation=0, ha="right", va="center")
    fig.savefig(args.out / "digit_strips.png", dpi=90)
    (args.out / "data_report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'digit_strips.png'}")


if __name__ == "__main__":
    main()
