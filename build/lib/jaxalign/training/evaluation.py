"""Held-out evaluation: decode a split and compute label error rate, frame accuracy, alignment
accuracy against the true segmentation and boundary error (what applies is the setup's call)."""

import jax
import numpy as np

from jaxalign.data import Batcher, SequenceData
from jaxalign.decoding import AlignmentScores, label_error_rate
from jaxalign.setups import Setup


def evaluate_split(evaluate, params, data: SequenceData, batcher: Batcher, setup: Setup, *, beam_width: int = 1):
    """Returns (metrics dict, forced alignments list or None) over every example of `data` once.

    `evaluate(params, batch)` is the jitted `make_eval_fn`; filler rows (weight 0) are skipped.
    """
    hyps, refs, greedy_hyps, beam_hyps = [], [], [], []
    frame_correct = frame_total = 0
    scores = AlignmentScores()
    forced = [None] * len(data)
    for batch in batcher.eval_batches():
        out = jax.device_get(evaluate(params, batch))
        for row in np.flatnonzero(batch["weights"] > 0):
            i = int(batch["index"][row])
            n = len(data.features[i])
            hyps.append(setup.hypothesis(out, row, n))
            refs.append(setup.reference(data, i))
            if "greedy_labels" in out:
                greedy_hyps.append(out["greedy_labels"][row][out["greedy_label_paddings"][row] == 0].tolist())
            if setup.frame_metrics and data.alignments is not None:
                frame_correct += int(np.sum(out["frame_symbols"][row, :n] == data.frame_labels(i)))
                frame_total += n
            if setup.aligns:
                forced[i] = out["positions"][row, :n].astype(np.int32)
                if data.alignments is not None:
                    scores.add(forced[i], data.alignments[i])
            if beam_width > 1:
                beam = setup.beam_decode(out["log_probs"][row, :n], beam_width)
                if beam is not None:
                    beam_hyps.append(beam)
    metrics = {"label_error_rate": label_error_rate(hyps, refs), **setup.summary_metrics(hyps, refs)}
    if frame_total:
        metrics["frame_accuracy"] = frame_correct / frame_total
    if setup.aligns and data.alignments is not None:
        metrics.update(scores.result())
    if greedy_hyps:
        metrics["label_error_rate_greedy"] = label_error_rate(greedy_hyps, refs)
    if beam_hyps:
        metrics["label_error_rate_beam"] = label_error_rate(beam_hyps, refs)
    return metrics, (forced if setup.aligns else None)
