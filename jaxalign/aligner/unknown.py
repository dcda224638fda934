"""Words the dictionary lacks, aligned as spoken noise (`data.oov=spn`): a filler over the phones.

The unknown word's one symbol `spn` is not a class of the net: its k sub-state rows score each frame
with the net's best phone there (sub-states summed, the pause left out), less `FILLER_PENALTY` nats.
On the unknown word's own frames no neighbouring phone fits and the filler wins; on a neighbour's
frames that phone is itself the best one and wins by the penalty; a pause stays a pause. So any
data=corpus run aligns unknown words, and none is trained on them (a trained `spn` class learnt from
a few percent of the tokens collapsed to k frames and gave the words' audio to the pauses around
them, which then heard speech everywhere: docs/aligner.md).
"""

import numpy as np

from jaxalign.align.grid import target_grid
from jaxalign.align.long import long_viterbi

FILLER_PENALTY = 1.0  # nats a frame: how much better than the filler a phone must fit to keep a frame


def filler_log_probs(setup, log_probs_TxC, silence_id: int, penalty: float = FILLER_PENALTY) -> np.ndarray:
    """(T, (C + 1) k): the head's sub-state log-probs (renormalised, the blank left out) and k filler
    columns for the symbol C (`spn`), each the best non-pause symbol's log-probability less `penalty`."""
    k, c = setup.states_per_symbol, setup.num_classes
    lp = np.asarray(log_probs_TxC, np.float32)[:, : c * k]
    lp = lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)
    per_symbol = np.logaddexp.reduce(lp.reshape(len(lp), c, k), axis=2)
    per_symbol[:, silence_id] = -np.inf
    filler = per_symbol.max(axis=1, keepdims=True) - penalty
    return np.concatenate([lp, np.repeat(filler, k, axis=1)], axis=1)


def align_with_filler(setup, log_probs_TxC, labels_L, silence_id: int, penalty: float = FILLER_PENALTY):
    """positions (T,) (the target index of each frame, as `Run.outputs`) of a target whose symbol
    C = `setup.num_classes` is `spn`, and (T, C + 1) per-symbol log-posteriors for its confidences
    (the filler's: the best phone's, without the penalty)."""
    k, c = setup.states_per_symbol, setup.num_classes
    lp = filler_log_probs(setup, log_probs_TxC, silence_id, penalty)
    labels_L = np.asarray(labels_L)
    rows, label_of, optional = target_grid(
        labels_L, k, setup.optional_symbol, pause_states=setup.pause_states, pause_columns=setup.pause_columns
    )
    found = long_viterbi(
        lp, rows, labels_L, k, label_of_L=label_of, optional_L=optional, pause_probability=setup.pause_probability
    )
    posteriors = setup.symbol_log_posteriors(log_probs_TxC)
    speech = np.where(np.arange(c) == silence_id, -np.inf, posteriors).max(axis=1, keepdims=True)
    return label_of[found.positions].astype(np.int32), np.concatenate([posteriors, speech], axis=1)
