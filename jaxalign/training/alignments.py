"""The host-side alignment store of the per-epoch schedules (the notes' option 1).

Holds one row path per training example; realigning runs a jitted, batched Viterbi (or masked)
alignment over the whole training set with the current model, then SGD uses it unchanged.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxalign.align import masked_align, uniform_align, viterbi_align
from jaxalign.data.dataset import flatten_ragged, unflatten_ragged
from jaxalign.decoding import churn
from jaxalign.setups import substate_labels


class AlignmentStore:
    def __init__(self, batcher, spec, graphdef):
        self.batcher, self.spec, self.graphdef = batcher, spec, graphdef
        self.positions: list[np.ndarray] = self._run(None)
        self.realignments = 0

    @functools.partial(jax.jit, static_argnums=0)
    def _align(self, params, batch):
        labels, label_pad = substate_labels(batch["labels"], batch["label_paddings"], self.spec.states_per_symbol)
        pad = batch["logit_paddings"]
        if params is None:
            return uniform_align(pad, label_pad).positions
        model = nnx.merge(self.graphdef, params)
        log_probs = jax.nn.log_softmax(model(batch["features"], pad).astype(jnp.float32), axis=-1)
        aligner = viterbi_align if self.spec.method == "viterbi" else masked_align
        return aligner(log_probs, pad, labels, label_pad).positions

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
        """(B, T) stored rows for a batch, -1 on padding."""
        out = np.full(batch["logit_paddings"].shape, -1, np.int32)
        for row, i in enumerate(batch["index"]):
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
