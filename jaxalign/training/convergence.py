"""Stopping when the alignments have settled, rather than after a fixed number of steps.

Every `trainer.converge_every` steps after the warm-up, the forced alignment of a fixed probe set of
training examples (`trainer.converge_examples`, drawn once with the run's seed) is compared with the
previous check's: the share of frames whose target symbol (phone) changed is the *churn*. When it stays below
`trainer.converge_churn` for `trainer.converge_patience` checks in a row, training has converged and
the loop stops; `trainer.steps` stays the ceiling. The probe is aligned by the same jitted decode as
the validation split (`evaluate_split`), so a check costs a forward pass over a few batches.
"""

import numpy as np

from jaxalign.config import TrainerConfig
from jaxalign.data import SequenceData
from jaxalign.data.dataset import flatten_ragged, unflatten_ragged
from jaxalign.decoding import churn


def probe_examples(num_examples: int, size: int, seed: int) -> np.ndarray:
    """Indices (sorted) of the `size` training examples whose alignments are compared."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_examples, size=min(size, num_examples), replace=False))


class Convergence:
    """The probe's alignments at the last check, the churn of each check, and whether the last
    `patience` checks were all quiet (churn < threshold)."""

    def __init__(self, trainer: TrainerConfig, probe: SequenceData, first_step: int):
        self.threshold, self.every, self.patience = (
            trainer.converge_churn,
            trainer.converge_every,
            trainer.converge_patience,
        )
        self.probe = probe
        self.first_step = first_step  # checks start once the warm-up is over
        self.lengths = probe.frame_lengths()
        self.previous: list[np.ndarray] | None = None
        self.quiet = 0  # consecutive checks with churn below the threshold

    def due(self, step: int) -> bool:
        """Whether a check falls after step `step` (0-based)."""
        return step + 1 >= self.first_step and (step + 1) % self.every == 0

    def update(self, forced: list[np.ndarray]) -> float | None:
        """Takes the probe's new alignments; returns the churn since the last check (None at the first)."""
        moved = None if self.previous is None else churn(self.previous, forced)
        self.quiet = self.quiet + 1 if moved is not None and moved < self.threshold else 0
        self.previous = [f.astype(np.int32) for f in forced]
        return moved

    @property
    def converged(self) -> bool:
        return self.quiet >= self.patience

    def reason(self) -> str:
        return (
            f"alignments converged: under {100 * self.threshold:.3g} % of the probe's frames changed phone "
            f"at each of the last {self.patience} checks ({self.every} steps apart)"
        )

    # -- checkpoints: the state a resumed run needs to stop where an uninterrupted one would --

    def flat(self) -> dict[str, np.ndarray]:
        """The state as flat arrays (the same shapes before the first check, for restoring into)."""
        out = {"quiet": np.array(self.quiet), "has_previous": np.array(self.previous is not None)}
        if self.lengths.sum() > 0:
            previous = self.previous or [np.zeros(n, np.int32) for n in self.lengths]
            out["previous"] = flatten_ragged(previous)[0]
        return out

    def load_flat(self, saved: dict[str, np.ndarray]) -> None:
        self.quiet = int(saved["quiet"])
        if bool(saved["has_previous"]):
            self.previous = [p.astype(np.int32) for p in unflatten_ragged(saved["previous"], self.lengths)]
