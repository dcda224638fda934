"""The notes' picture: the probability table of a sequence with its Viterbi path drawn over it, sized
for one paper column (3.5 in wide, 300 dpi, 7 pt text)."""

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLUMN_WIDTH_IN = 3.5  # one column of a two-column paper
DPI = 300
MAX_TICKS = 12  # row names that fit beside a 1.2 in panel at 7 pt
STYLE = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
}


def pick_examples(data, count: int = 3) -> list[int]:
    """A fixed choice of examples: the shortest, median and longest target (ties: lowest index)."""
    lengths = data.label_lengths()
    order = np.lexsort((np.arange(len(lengths)), lengths))
    last = len(order) - 1
    picks = [order[j * last // (count - 1)] for j in range(count)] if count > 1 else [order[last // 2]]
    return list(dict.fromkeys(int(i) for i in picks))


def _thin(rows: list[int], num_rows: int, keep_last: bool = False) -> list[int]:
    """Tick rows at least num_rows / MAX_TICKS apart, so 7 pt names never overlap (keep_last: the
    last row, e.g. the blank, wins over a neighbour)."""
    gap = max(1, -(-num_rows // MAX_TICKS))
    kept: list[int] = []
    for row in rows:
        if kept and row - kept[-1] < gap:
            if not (keep_last and row == rows[-1]):
                continue
            kept.pop()
        kept.append(row)
    return kept


def _path(axis, rows, **style) -> None:
    """A row-per-frame path as steps across whole frame cells (frame t spans t - 0.5 .. t + 0.5)."""
    rows = np.asarray(rows)
    axis.plot(np.arange(len(rows) + 1) - 0.5, np.append(rows, rows[-1]), drawstyle="steps-post", **style)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_alignment(evaluate, params, data, batcher, setup, path: Path, example: int | None = None) -> Path:
    """Saves two panels for one held-out sequence (default: the median-length target): the table of
    P(symbol | frame) over all classes (sub-states summed; the CTC blank as its own row), and the
    target-ordered grid (one row per target symbol) with the forced Viterbi path and, where known,
    the true segmentation. One colour bar serves both panels."""
    example = pick_examples(data, 3)[1 if len(data) > 1 else 0] if example is None else example
    batch = batcher.make_batch(np.full(batcher.batch_size, example))
    out = {key: np.asarray(value) for key, value in evaluate(params, batch).items()}
    n = len(data.features[example])
    probs = np.exp(np.asarray(out["log_probs"][0, :n], np.float64))  # (T, C')
    labels = data.labels[example]
    target_names = [data.vocab[c] for c in labels]
    k, num_classes = setup.states_per_symbol, setup.num_classes

    symbol_probs = probs[:, : num_classes * k].reshape(n, num_classes, k).sum(axis=2)  # (T, C)
    table, row_names = symbol_probs, list(data.vocab)
    if setup.blank_id is not None:
        table = np.concatenate([symbol_probs, probs[:, setup.blank_id : setup.blank_id + 1]], axis=1)
        row_names.append("blank")
    # Many classes: name only the target's classes (and the blank), spaced so 7 pt labels stay apart.
    ticked = list(range(len(row_names))) if len(row_names) <= MAX_TICKS else sorted(set(labels.tolist()))
    if setup.blank_id is not None and len(row_names) > MAX_TICKS:
        ticked.append(len(row_names) - 1)
    ticked = _thin(ticked, len(row_names), keep_last=setup.blank_id is not None)

    with plt.rc_context(STYLE):
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH_IN, 3.0), sharex=True, constrained_layout=True)
        image = top.imshow(
            table.T, aspect="auto", origin="upper", cmap="Greys", vmin=0, vmax=1, interpolation="nearest"
        )
        top.set_yticks(ticked, [row_names[r] for r in ticked])
        top.set_ylabel("class")
        top.set_title(_shorten(f"example {example}: {' '.join(target_names)}"))

        grid = symbol_probs[:, labels].T  # (L, T): the target-ordered grid
        bottom.imshow(grid, aspect="auto", origin="upper", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        if "positions" in out:
            _path(bottom, out["positions"][0, :n], color="tab:orange", lw=1.2, label="Viterbi path")
        if data.alignments is not None:
            _path(bottom, data.alignments[example], color="tab:blue", ls="--", lw=1.0, label="true segmentation")
        rows = _thin(list(range(len(labels))), len(labels))
        bottom.set_yticks(rows, [target_names[r] for r in rows])
        bottom.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=6, integer=True))
        bottom.set_xlabel("frame")
        bottom.set_ylabel("target row")
        if bottom.get_legend_handles_labels()[0]:
            bottom.legend(loc="upper right", framealpha=0.8, handlelength=1.5, borderpad=0.3)
        fig.colorbar(image, ax=[top, bottom], label="probability", fraction=0.05, pad=0.02)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: same inputs, same bytes
        plt.close(fig)
    return path


def plot_alignments(
    evaluate, params, data, batcher, setup, stem: Path, examples: list[int] | None = None
) -> list[Path]:
    """`plot_alignment` for each of `examples` (default `pick_examples`: shortest, median and longest
    target), into `<stem>_<i>.png`."""
    examples = pick_examples(data) if examples is None else examples
    stem = Path(stem)
    return [
        plot_alignment(evaluate, params, data, batcher, setup, stem.parent / f"{stem.name}_{i}.png", example)
        for i, example in enumerate(examples)
    ]


def plot_run_alignment(
    run_dir, out_path, step: int | None = None, split: str = "test", examples: list[int] | None = None
) -> list[Path]:
    """The alignment figures of a finished run, rebuilt from its directory (config + checkpoint `step`,
    default the latest) without training. `out_path` ending in `.png` gives `<stem>_<i>.png` beside
    it; otherwise it is a folder that gets `alignment_<split>_<i>.png`, the names training writes.
    With the latest checkpoint the files equal the ones written at the end of training."""
    from jaxalign.data import Batcher
    from jaxalign.data.load import load_splits
    from jaxalign.inference import load_run

    run = load_run(run_dir, step=step)
    data = getattr(load_splits(run.config.data), split)
    if not len(data):
        raise ValueError(f"the run's {split} split is empty")
    trainer = run.config.trainer
    batcher = Batcher(data, trainer.batch_size, num_buckets=trainer.num_buckets)  # the Trainer's shapes
    out_path = Path(out_path)
    stem = out_path.with_suffix("") if out_path.suffix == ".png" else out_path / f"alignment_{split}"
    return plot_alignments(run.evaluate, run.params, data, batcher, run.setup, stem, examples)
