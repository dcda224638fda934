"""Decoding (greedy, sub-state greedy, CTC best path and prefix beam search) and metrics."""

from jaxalign.decoding.decode import ctc_prefix_beam_search, substate_greedy_decode, substate_viterbi_decode
from jaxalign.decoding.metrics import (
    AlignmentScores,
    boundary_agreement,
    boundary_error,
    churn,
    edit_distance,
    label_error_rate,
)

__all__ = [
    "AlignmentScores",
    "boundary_agreement",
    "boundary_error",
    "churn",
    "ctc_prefix_beam_search",
    "edit_distance",
    "label_error_rate",
    "substate_greedy_decode",
    "substate_viterbi_decode",
]
