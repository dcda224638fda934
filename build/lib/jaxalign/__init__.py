"""jaxalign: training recurrent nets on sequences whose inputs and outputs are not time-aligned."""

from jaxalign.align import (
    Alignment,
    check_batch,
    compress,
    expand,
    forward_score,
    greedy_decode,
    masked_align,
    uniform_align,
    viterbi_align,
)

__version__ = "0.1.0"

__all__ = [
    "Alignment",
    "check_batch",
    "compress",
    "expand",
    "forward_score",
    "greedy_decode",
    "masked_align",
    "uniform_align",
    "viterbi_align",
]
