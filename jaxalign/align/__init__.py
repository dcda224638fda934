"""Alignment kernels: Viterbi and full-sum over the target-ordered grid and over left-to-right graphs,
masked and uniform alignment."""

from jaxalign.align.ctc import CtcAlignment, ctc_forced_align
from jaxalign.align.forward import forward_score
from jaxalign.align.forward_pallas import forward_score_pallas
from jaxalign.align.graph import (
    Graph,
    GraphAlignment,
    ctc_graph,
    graph_forward,
    graph_from_arcs,
    graph_viterbi,
    grid_graph,
)
from jaxalign.align.simple import compress, expand, greedy_decode, masked_align, uniform_align
from jaxalign.align.types import Alignment
from jaxalign.align.validate import check_batch
from jaxalign.align.viterbi import viterbi_align
from jaxalign.align.viterbi_pallas import viterbi_align_pallas

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
    "masked_align",
    "uniform_align",
    "viterbi_align",
    "viterbi_align_pallas",
]
