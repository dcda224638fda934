"""The notes' picture: the probability table of one sequence with its Viterbi path drawn over it."""

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_alignment(evaluate, params, data, batcher, setup, path: Path, example: int | None = None) -> Path:
    """Saves two panels for one held-out sequence: the full table of class probabilities over frames,
    and the target-ordered grid (one row per target symbol) with the forced Viterbi path and, where
    known, the true segmentation."""
    lengths = data.label_lengths()
    example = int(np.argmax(lengths)) if example is None else example
    batch = batcher.make_batch(np.full(batcher.batch_size, example))
    out = {key: np.asarray(value) for key, value in evaluate(params, batch).items()}
    n = len(data.features[example])
    probs = np.exp(np.asarray(out["log_probs"][0, :n]))  # (T, C')
    labels = data.labels[example]
    names = [data.vocab[c] for c in labels]

    k = setup.states_per_symbol
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, n / 6), 6), constrained_layout=True)
    top.imshow(probs.T, aspect="auto", origin="upper", cmap="Greys", vmin=0, vmax=1)
    top.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    top.set_ylabel("class" if k == 1 else f"class (symbol x {k} sub-states)")
    top.set_title(f"P(class | frame), test example {example}: {' '.join(names)}")
    symbol_probs = probs[:, : setup.num_classes * k].reshape(n, setup.num_classes, k).sum(axis=2)
    grid = symbol_probs[:, labels].T  # (L, T): the target-ordered grid
    bottom.imshow(grid, aspect="auto", origin="upper", cmap="Greys", vmin=0, vmax=1)
    if "positions" in out:
        bottom.plot(np.arange(n), np.asarray(out["positions"][0, :n]), color="tab:red", lw=2, label="Viterbi path")
    if data.alignments is not None:
        bottom.plot(np.arange(n), data.alignments[example], color="tab:blue", ls="--", lw=1.5, label="true segmentation")
    bottom.set_yticks(range(len(labels)), names)
    bottom.set_xlabel("frame")
    bottom.set_ylabel("target row")
    bottom.legend(loc="upper left", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
