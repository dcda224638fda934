"""Held-out evaluation: decode a split and compute label error rate, frame accuracy, alignment
accuracy against the true segmentation and boundary error (what applies is the setup's call), and
the alignment figures drawn from the same outputs."""

from pathlib import Path

import numpy as np

from jaxalign.data import Batcher, SequenceData
from jaxalign.decoding import AlignmentScores, label_error_rate
from jaxalign.plots import pick_examples
from jaxalign.setups import Setup
from jaxalign.training.outputs import per_example


def evaluate_split(evaluate, data: SequenceData, batcher: Batcher, setup: Setup, *, beam_width: int, to_host):
    """Returns (metrics dict, forced alignments list or None) over every example of `data` once.

    `evaluate(batch)` is the jitted `make_eval_fn` with its params bound; `to_host` as in `per_example`.
    """
    hyps, refs, greedy_hyps, beam_hyps = [], [], [], []
    frame_correct = frame_total = 0
    scores = {}  # output key -> AlignmentScores: "positions" (the setup's forced alignment), e.g. "ctc_positions"
    forced = [None] * len(data)
    for i, out in per_example(evaluate, batcher, to_host=to_host):
        hyps.append(setup.hypothesis(out))
        refs.append(setup.reference(data, i))
        if "greedy_labels" in out:
            greedy_hyps.append(out["greedy_labels"][out["greedy_label_paddings"] == 0].tolist())
        if setup.frame_metrics and data.alignments is not None:
            frame_correct += int(np.sum(out["frame_symbols"] == data.frame_labels(i)))
            frame_total += len(out["frame_symbols"])
        if setup.aligns:
            forced[i] = out["positions"].astype(np.int32)
            if data.alignments is not None:
                for key in (k for k in out if k.endswith("positions")):
                    scores.setdefault(key, AlignmentScores()).add(out[key], data.alignments[i])
        if beam_width > 1 and "log_probs" in out:
            beam = setup.beam_decode(out["log_probs"], beam_width)
            if beam is not None:
                beam_hyps.append(beam)
    metrics = {"label_error_rate": label_error_rate(hyps, refs), **setup.summary_metrics(hyps, refs)}
    if frame_total:
        metrics["frame_accuracy"] = frame_correct / frame_total
    for (
        key,
        found,
    ) in scores.items():  # "positions" -> alignment_accuracy, ...; "ctc_positions" -> ctc_alignment_accuracy, ...
        metrics.update({key.removesuffix("positions") + name: value for name, value in found.result().items()})
    if greedy_hyps:
        metrics["label_error_rate_greedy"] = label_error_rate(greedy_hyps, refs)
    if beam_hyps:
        metrics["label_error_rate_beam"] = label_error_rate(beam_hyps, refs)
    return metrics, (forced if setup.aligns else None)


def alignment_figures(evaluate, data: SequenceData, batcher: Batcher, setup: Setup, stem, examples=None, *, to_host):
    """`Setup.plot_example` (by default `plot_alignment`) of each of `examples` (default
    `pick_examples`: the shortest, median and longest target) into `<stem>_<i>.png`; returns the
    paths (none where the setup draws none). `evaluate` as in `evaluate_split`."""
    examples = pick_examples(data) if examples is None else examples
    stem = Path(stem)
    paths = []
    for n, example in enumerate(examples):
        (_, out), *_ = per_example(evaluate, batcher, [example], to_host=to_host)
        title = f"example {example}: {' '.join(data.vocab[c] for c in data.labels[example])}"
        path = setup.plot_example(stem.parent / f"{stem.name}_{n}.png", out, data, example, title)
        if path is not None:
            paths.append(path)
    return paths
