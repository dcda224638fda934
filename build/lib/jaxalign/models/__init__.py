"""Sequence models."""

from jaxalign.models.rnn import KINDS, SequenceModel

__all__ = ["KINDS", "SequenceModel"]
