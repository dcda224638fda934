"""The one inference path: a jitted function over a data set's evaluation batches, handed back one
example at a time. Evaluation, the alignment store, `load_run`'s `Run` (hence `jaxalign-align`),
the figures and the boundary report all read their outputs through `per_example`."""

from collections.abc import Callable, Iterator

import jax
import numpy as np

from jaxalign.data import Batcher

# Outputs per decoded symbol, not per frame: never cut to the example's frames, even where their
# length happens to equal the batch's padded T (a seq2seq decode of max_output_length + 1 symbols).
SEQUENCE_KEYS = frozenset({"labels", "label_paddings", "greedy_labels", "greedy_label_paddings"})


def per_example(
    fn: Callable[[dict], dict], batcher: Batcher, index=None, *, to_host=jax.device_get
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yields (example id, outputs) for every example of `batcher.data` once, or for those in
    `index`, in the batcher's bucket shapes (so `fn` compiles once per bucket).

    fn: batch -> dict of (B, ...) arrays (e.g. the jitted `make_eval_fn` with its params bound).
    Filler rows (weight 0) are skipped. Arrays with a frame axis, (B, T, ...) for the batch's padded
    T, come back cut to the example's own T_i frames; other arrays, and those of `SEQUENCE_KEYS`,
    give the example's whole row.
    to_host: device outputs -> host arrays (`jax.device_get`; with several processes, a gather).
    """
    for batch in batcher.eval_batches(index):
        out = to_host(fn(batch))
        padded_frames = batch["logit_paddings"].shape[1]
        frames_B = (batch["logit_paddings"] == 0).sum(axis=1)
        for row in np.flatnonzero(batch["weights"] > 0):
            n = int(frames_B[row])
            yield (
                int(batch["index"][row]),
                {
                    key: np.asarray(
                        value[row, :n]
                        if np.ndim(value) >= 2 and value.shape[1] == padded_frames and key not in SEQUENCE_KEYS
                        else value[row]
                    )
                    for key, value in out.items()
                },
            )
