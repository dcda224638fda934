"""How often each word of a corpus is followed by a pause in the finished run's own alignments of its
training set: the counts behind MFA's silence probabilities, which training writes into the run's
dictionary.txt (`jaxalign.data.dictionary.estimated_pause_probabilities`) and `jaxalign-align` then
weighs the pause between two words with (`jaxalign.setups.alternatives`).

Only the pauses between two words are counted: the recording's leading and trailing silence says
nothing about the word beside it, so the pauses at the edges keep `align.pause_probability`.
"""

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np

from jaxalign.data import Batcher, SequenceData
from jaxalign.training.outputs import per_example
from jaxalign.training.step import forward


def pause_counts(
    data: SequenceData, batcher: Batcher, setup, graphdef, params, step: int, choice=None
) -> tuple[Counter, Counter]:
    """Aligns every training example with `params` (the path training realigns with, at `step`) and
    counts per (word, index of its pronunciation) how often it is followed by another word
    (`occurrences`) and how often a pause lies between them (`paused`). choice: per example with
    `alternatives`, the index of each word's pronunciation (`PronunciationChoice.choice`), or None;
    other words count as their first.
    Returns (paused, occurrences)."""

    def target_index(params, batch):
        log_probs = jax.nn.log_softmax(forward(graphdef, params, batch).astype(jnp.float32), axis=-1)
        rows, _ = setup.path_targets(setup.align(log_probs, {**batch, "step": step}))
        return {"index": setup.grid(batch).labels_of(rows)}  # (B, T): each frame's index in the target

    align = jax.jit(target_index)
    paused, occurrences = Counter(), Counter()
    for i, out in per_example(lambda batch: align(params, batch), batcher):
        words, labels = data.words[i], data.labels[i]
        pauses = np.flatnonzero(labels == data.optional_symbol)  # pause, word, pause, ..., word, pause
        if len(pauses) != len(words) + 1:
            continue
        visited = set(np.unique(out["index"]).tolist())
        chose = choice is not None and data.alternatives is not None and data.alternatives[i] is not None
        for n, word in enumerate(words[:-1]):
            key = (word, int(choice[i][n]) if chose else 0)
            occurrences[key] += 1
            paused[key] += int(pauses[n + 1]) in visited
    return paused, occurrences
