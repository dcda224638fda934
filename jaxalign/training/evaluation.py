"""Held-out evaluation: decode a split and compute label error rate, frame accuracy, alignment
accuracy against the true segmentation, boundary error."""

import jax
import numpy as np

from jaxalign.data import Batcher, SequenceData
from jaxalign.decoding import AlignmentScores, ctc_prefix_beam_search, label_error_rate


def merge_repeats(seq) -> list[int]:
    return [int(s) for i, s in enumerate(seq) if i == 0 or s != seq[i - 1]]


def evaluate_split(evaluate, params, data: SequenceData, batcher: Batcher, spec, *, beam_width: int = 1):
    """Returns (metrics dict, forced alignments list or None) for every example of `data`."""
    hyps, refs, beam_hyps, greedy_hyps = [], [], [], []
    frame_correct = frame_total = 0
    scores = AlignmentScores()
    forced = [None] * len(data)
    for batch in batcher.eval_batches():
        out = jax.device_get(evaluate(params, batch))
        for row in np.flatnonzero(batch["weights"] > 0):
            i = int(batch["index"][row])
            n = len(data.features[i])
            if spec.setup == "many_to_one":
                hyps.append([int(out["frame_symbols"][row, n - 1])])
                refs.append(data.labels[i][:1].tolist())
            else:
                hyps.append(out["labels"][row][out["label_paddings"][row] == 0].tolist())
                if "greedy_labels" in out:
                    greedy_hyps.append(out["greedy_labels"][row][out["greedy_label_paddings"][row] == 0].tolist())
                if spec.setup == "order_sync":
                    refs.append(data.labels[i].tolist())
                else:  # time-synchronous nets emit merged frame labels; repeats cannot be told apart
                    refs.append(merge_repeats(data.frame_labels(i)))
            if data.alignments is not None and spec.setup != "many_to_one":
                frame_correct += int(np.sum(out["frame_symbols"][row, :n] == data.frame_labels(i)))
                frame_total += n
            if spec.setup == "order_sync":
                forced[i] = out["positions"][row, :n].astype(np.int32)
                if data.alignments is not None:
                    scores.add(forced[i], data.alignments[i])
            if beam_width > 1 and spec.blank_id is not None and spec.schedule == "ctc":
                beam_hyps.append(ctc_prefix_beam_search(out["log_probs"][row, :n], spec.blank_id, beam_width))
    metrics = {"label_error_rate": label_error_rate(hyps, refs)}
    if spec.setup == "many_to_one":
        metrics["accuracy"] = float(np.mean([h == r for h, r in zip(hyps, refs)]))
    if frame_total:
        metrics["frame_accuracy"] = frame_correct / frame_total
    if spec.setup == "order_sync" and data.alignments is not None:
        metrics.update(scores.result())
    if greedy_hyps:
        metrics["label_error_rate_greedy"] = label_error_rate(greedy_hyps, refs)
    if beam_hyps:
        metrics["label_error_rate_beam"] = label_error_rate(beam_hyps, refs)
    return metrics, (forced if spec.setup == "order_sync" else None)
