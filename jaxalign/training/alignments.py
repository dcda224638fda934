"""The host-side alignment store of the stored schedules (per_epoch, realign_list: the notes' option 1).

Holds one row path per training example; realigning runs a jitted, batched alignment (the setup's
path search) over the whole training set with the current model, then SGD uses it unchanged. The
schedule says when (`Schedule.realign_due`); the store keeps the marks of the realignments done.
"""

import jax
import numpy as np

from jaxalign.data.dataset import flatten_ragged, unflatten_ragged
from jaxalign.decoding import churn
from jaxalign.training.outputs import per_example
from jaxalign.training.step import forward


class AlignmentStore:
    def __init__(self, batcher, setup, graphdef):
        self.batcher, self.setup = batcher, setup

        def align(params, batch, step):
            if params is None:  # the flat start
                positions = setup.flat_start(batch).positions
            else:
                log_probs = jax.nn.log_softmax(forward(graphdef, params, batch), axis=-1)
                positions = setup.align(log_probs, {**batch, "step": step}).positions
            return {"positions": positions}

        self._align = jax.jit(align)
        self.positions: list[np.ndarray] = self._run(None, 0)
        self.realigned: set[int] = set()  # marks of the realignments done (see Schedule.realign_due)

    def _run(self, params, step: int) -> list[np.ndarray]:
        out = [None] * len(self.batcher.data)
        for i, example in per_example(lambda batch: self._align(params, batch, step), self.batcher):
            out[i] = example["positions"].astype(np.int32)
        return out

    def realign_if_due(self, step: int, params, before=None) -> float | None:
        """Realigns every training example where the schedule says so before this step, first
        calling `before(params)` if given (e.g. re-choosing the targets' pronunciations); returns
        the churn (fraction of frames that moved), or None when no realignment was due."""
        state = self.batcher.state
        mark = self.setup.schedule.realign_due(self.setup, step, state.epoch, state.position == 0, self.realigned)
        if mark is None:
            return None
        if before is not None:
            before(params)
        new = self._run(params, step)
        moved = churn(self.positions, new)
        self.positions = new
        self.realigned.add(mark)
        return moved

    def batch_positions(self, batch) -> np.ndarray:
        """(B, T) stored rows for a batch, -1 on padding and on filler rows."""
        out = np.full(batch["logit_paddings"].shape, -1, np.int32)
        for row, i in enumerate(batch["index"]):
            if batch["weights"][row] > 0:
                p = self.positions[int(i)]
                out[row, : len(p)] = p
        return out

    def flat(self) -> dict[str, np.ndarray]:
        """Ragged store as flat arrays (for checkpoints)."""
        positions, lengths = flatten_ragged(self.positions)
        return {"positions": positions, "lengths": lengths}

    def load_flat(self, flat, realigned) -> None:
        self.positions = [p.astype(np.int32) for p in unflatten_ragged(flat["positions"], flat["lengths"])]
        self.realigned = set(realigned)
