"""jaxalign: training recurrent nets on sequences whose inputs and outputs are not time-aligned."""

from jaxalign.align import (
    Alignment,
    CtcAlignment,
    Graph,
    GraphAlignment,
    check_batch,
    compress,
    ctc_forced_align,
    ctc_graph,
    expand,
    forward_score,
    forward_score_pallas,
    graph_forward,
    graph_from_arcs,
    graph_viterbi,
    greedy_decode,
    grid_graph,
    masked_align,
    uniform_align,
    viterbi_align,
    viterbi_align_pallas,
)

__version__ = "0.1.0"


def __getattr__(name):
    # `load_run` pulls in flax, orbax and the training code: imported on first use, not with the package.
    if name == "load_run":
        from jaxalign.aligner import load_run

        return load_run
    raise AttributeError(f"module 'jaxalign' has no attribute {name!r}")


__all__ = [
    "Alignment",
    "CtcAlignment",
    "Graph",
    "GraphAlignment",
    "check_batch",
    "compress",
    "ctc_forced_align",
    "ctc_graph",
    "expand",
    "forward_score",
    "forward_score_pallas",
    "graph_forward",
    "graph_from_arcs",
    "graph_viterbi",
    "greedy_decode",
    "grid_graph",
    "load_run",
    "masked_align",
    "uniform_align",
    "viterbi_align",
    "viterbi_align_pallas",
]
