"""Alignment kernels: Viterbi and full-sum over the target-ordered grid, masked and uniform alignment."""

from jaxalign.align.ctc import CtcAlignment, ctc_forced_align
from jaxalign.align.forward import forward_score
from jaxalign.align.forward_pallas import forward_score_pallas
from jaxalign.align.simple import compress, expand, greedy_decode, masked_align, uniform_align
from jaxalign.align.types import Alignment
from jaxalign.align.validate import check_batch
from jaxalign.align.viterbi import viterbi_align
from jaxalign.align.viterbi_pallas import viterbi_align_pallas

__all__ = [
    "Alignment",
    "CtcAlignment",
    "check_batch",
    "compress",
    "ctc_forced_align",
    "expand",
    "forward_score",
    "forward_score_pallas",
    "greedy_decode",
    "masked_align",
    "uniform_align",
    "viterbi_align",
    "viterbi_align_pallas",
]
