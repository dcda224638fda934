"""The host-side alignment store of the stored schedules (per_epoch, realign_list: the notes' option 1).

Holds one row path per training example; realigning runs a jitted, batched alignment (the setup's
aligner) over the whole training set with the current model, then SGD uses it unchanged.
"""

import jax
import numpy as np

from jaxalign.align import uniform_align
from jaxalign.data.dataset import flatten_ragged, unflatten_ragged
from jaxalign.decoding import churn
from jaxalign.training.step import forward


class AlignmentStore:
    def __init__(self, batcher, setup, graphdef):
        self.batcher, self.setup = batcher, setup

        def align(params, batch):
            if params is None:  # the flat start
                return uniform_align(batch["logit_paddings"], setup.grid(batch)[1]).positions
            return setup.align(jax.nn.log_softmax(forward(graphdef, params, batch), axis=-1), batch).positions

        self._align = jax.jit(align)
        self.positions: list[np.ndarray] = self._run(None)
        self.realignments = 0

    def _run(self, params) -> list[np.ndarray]:
        out = [None] * len(self.batcher.data)
        for batch in self.batcher.eval_batches():
            positions = np.asarray(self._align(params, batch))
            lens = (batch["logit_paddings"] == 0).sum(1)
            for row in np.flatnonzero(batch["weights"] > 0):
                out[int(batch["index"][row])] = positions[row, : lens[row]].astype(np.int32)
        return out

    def realign(self, params) -> float:
        """Realigns every training example; returns the churn (fraction of frames that moved)."""
        new = self._run(params)
        moved = churn(self.positions, new)
        self.positions = new
        self.realignments += 1
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
        return {"positions": positions, "lengths": lengths, "realignments": np.array(self.realignments, np.int64)}

    def load_flat(self, flat) -> None:
        self.positions = [p.astype(np.int32) for p in unflatten_ragged(flat["positions"], flat["lengths"])]
        self.realignments = int(flat["realignments"])
