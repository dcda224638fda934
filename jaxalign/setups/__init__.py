"""Divergences of the four setups (one_to_one, time_sync, many_to_one, order_sync)."""

from jaxalign.setups.divergences import (
    ctc_divergence,
    frame_cross_entropy,
    many_to_one_weights,
    substate_labels,
)

__all__ = ["ctc_divergence", "frame_cross_entropy", "many_to_one_weights", "substate_labels"]
