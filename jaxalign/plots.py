"""The notes' picture: the probability table of a sequence with its Viterbi path drawn over it, and a
seq2seq run's attention matrix with the path through it, sized for one paper column (3.5 in wide,
300 dpi, 7 pt text)."""

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


def _grid_panel(axis, row_names, positions, truth, *, path_label: str, ylabel: str) -> None:
    """Over a drawn grid (one row per name, one column per frame): the path `positions` (T,), the
    true segmentation `truth` (T,) where given, thinned row names, frame ticks and the legend."""
    if positions is not None:
        _path(axis, positions, color="tab:orange", lw=1.2, label=path_label)
    if truth is not None:
        _path(axis, truth, color="tab:blue", ls="--", lw=1.0, label="true segmentation")
    rows = _thin(list(range(len(row_names))), len(row_names))
    axis.set_yticks(rows, [row_names[r] for r in rows])
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=6, integer=True))
    axis.set_xlabel("frame")
    axis.set_ylabel(ylabel)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="upper right", framealpha=0.8, handlelength=1.5, borderpad=0.3)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plot_alignment(
    path, table_TxR, row_names: list[str], labels, *, num_classes: int, title: str = "", positions=None, truth=None
) -> Path:
    """Saves two panels for one sequence into `path`: the table of P(class | frame) (T, R) over all
    rows (classes first, then outputs that are not classes, e.g. a CTC blank: rows >= num_classes),
    and the target-ordered grid of `labels` (L,) class ids (one row per target symbol) with the
    forced path `positions` (T,) and the true segmentation `truth` (T,) where given. One colour
    bar serves both panels."""
    table_TxR = np.asarray(table_TxR)
    labels = np.asarray(labels)
    target_names = [row_names[c] for c in labels]
    extra = list(range(num_classes, len(row_names)))
    # Many classes: name only the target's classes (and the extra rows), spaced so 7 pt labels stay apart.
    ticked = list(range(len(row_names))) if len(row_names) <= MAX_TICKS else sorted(set(labels.tolist())) + extra
    ticked = _thin(ticked, len(row_names), keep_last=bool(extra))

    with plt.rc_context(STYLE):
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH_IN, 3.0), sharex=True, constrained_layout=True)
        image = top.imshow(
            table_TxR.T, aspect="auto", origin="upper", cmap="Greys", vmin=0, vmax=1, interpolation="nearest"
        )
        top.set_yticks(ticked, [row_names[r] for r in ticked])
        top.set_ylabel("class")
        top.set_title(_shorten(title))

        grid = table_TxR[:, labels].T  # (L, T): the target-ordered grid
        bottom.imshow(grid, aspect="auto", origin="upper", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        _grid_panel(bottom, target_names, positions, truth, path_label="Viterbi path", ylabel="target row")
        fig.colorbar(image, ax=[top, bottom], label="probability", fraction=0.05, pad=0.02)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: same inputs, same bytes
        plt.close(fig)
    return path


def plot_attention(path, attention_TxL, row_names: list[str], *, title: str = "", positions=None, truth=None) -> Path:
    """Saves the attention matrix of one sequence into `path`, in the style of `plot_alignment`'s
    grid panel: one row per output position (`row_names`, the target symbols in decoding order),
    one column per frame, the weight each output step puts on each frame (T, L); over it the best
    monotone path through the matrix `positions` (T,) and the true segmentation `truth` (T,)."""
    attention_LxT = np.asarray(attention_TxL).T
    with plt.rc_context(STYLE):
        fig, axis = plt.subplots(figsize=(COLUMN_WIDTH_IN, 1.8), constrained_layout=True)
        image = axis.imshow(
            attention_LxT, aspect="auto", origin="upper", cmap="Greys", vmin=0, vmax=1, interpolation="nearest"
        )
        _grid_panel(
            axis, row_names, positions, truth, path_label="path through the attention", ylabel="output position"
        )
        axis.set_title(_shorten(title))
        fig.colorbar(image, ax=axis, label="attention weight", fraction=0.05, pad=0.02)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
        plt.close(fig)
    return path
