"""Forced alignment of a bring-your-own `.npz` file (`data=arrays` layout, labels required):
`jaxalign-align RUN_DIR DATA.npz --out DIR [--format npz,ctm,textgrid] [--frame-shift S] [--evaluate]`.

Every sequence is aligned with a trained order_sync or seq2seq run (seq2seq: the path through the
attention of the decode forced onto the given labels) and written as `DIR/alignments.npz` (the
target row of each frame), `DIR/alignments.ctm` and `DIR/textgrids/seq_00000.TextGrid` (one
`phones` tier). A sequence whose target needs more frames than it has is skipped and named; the
rest are written. Times: the run's audio front end where it has one (`jaxalign.aligner.export`),
else `--frame-shift` seconds per frame (default 0.01); `--frame-shift` overrides the front end.
"""

import json
import math
from pathlib import Path

import numpy as np

from jaxalign.aligner.export import (
    Clock,
    Interval,
    segments,
    utterance_id,
    write_ctm,
    write_npz,
    write_text,
    write_textgrid,
)
from jaxalign.aligner.output_dir import OutputDir, check_out_dir
from jaxalign.aligner.run import load_run, require_aligning_setup
from jaxalign.errors import RunError

FORMATS = ("npz", "ctm", "textgrid")
DEFAULT_FRAME_SHIFT = 0.01  # seconds per frame of a run without an audio front end


def phone_tiers(positions_T, labels, vocab, clock: Clock, duration: float) -> dict[str, list[Interval]]:
    """{"phones": [...]}: one interval per run of frames on the same target row."""
    num_frames = len(positions_T)
    return {
        "phones": [
            Interval(
                clock.boundary(a, num_frames, duration),
                clock.boundary(b, num_frames, duration),
                vocab[int(labels[row])],
            )
            for a, b, row in segments(positions_T)
        ]
    }


def align_file(
    run_dir,
    data_path,
    out_dir,
    *,
    formats=FORMATS,
    frame_shift=None,
    evaluate=False,
    step=None,
    overwrite=False,
    say=print,
) -> dict:
    """Aligns `data_path` with the run in `run_dir` and writes `formats` into `out_dir` (its rules:
    `jaxalign.aligner.output_dir`). Returns {"aligned": [indices], "skipped": [indices], "metrics":
    {...} (with evaluate)}. A file in which no sequence can be aligned is a RunError: nothing is
    written and no metric is reported."""
    from jaxalign.data import read_arrays, to_sequences
    from jaxalign.decoding import AlignmentScores, label_error_rate

    require_aligning_setup(run_dir)  # before restoring: a non-aligning run's checkpoint holds another head
    if frame_shift is not None and not (math.isfinite(frame_shift) and frame_shift > 0):
        raise RunError(f"--frame-shift must be a finite number of seconds > 0, got {frame_shift}")
    arrays = read_arrays(data_path, long_targets=True)
    data = to_sequences(arrays)
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite)
    run = load_run(run_dir, step=step)
    check_file_fits_run(data, arrays, run, data_path, say)
    clock = run.clock if frame_shift is None and run.clock is not None else Clock(frame_shift or DEFAULT_FRAME_SHIFT)
    say(f"{run_dir}: setup={run.config.setup.name}, checkpoint step {run.step}; {len(data)} sequences from {data_path}")

    feasible = run.feasible(data.frame_lengths(), data.labels)
    keep, skipped = [int(i) for i in np.flatnonzero(feasible)], [int(i) for i in np.flatnonzero(~feasible)]
    for i in skipped:
        x, y = data.features[i], data.labels[i]
        say(
            f"skipped sequence {i}: its target of {len(y)} symbols needs {run.setup.frames_needed(y)} frames; it has {len(x)}"
        )
    if not keep:
        raise RunError(
            f"{data_path}: none of its {len(data)} sequences can be aligned (every target needs more frames than it has)"
        )
    outs = run.outputs([data.features[i] for i in keep], [data.labels[i] for i in keep])
    positions = {i: out["positions"] for i, out in zip(keep, outs)}
    tiers_of = {
        utterance_id(i): phone_tiers(
            positions[i], data.labels[i], data.vocab, clock, clock.duration(len(data.features[i]))
        )
        for i in keep
    }
    state = {"run": str(Path(run_dir).resolve()), "step": run.step, "data": str(Path(data_path).resolve())}
    with OutputDir.open(out_dir, state=state, overwrite=overwrite) as out:
        written = []
        if "npz" in formats:
            written.append(out.write("alignments.npz", write_npz, positions).name)
        if "ctm" in formats:
            written.append(out.write("alignments.ctm", write_ctm, tiers_of, "phones").name)
        if "textgrid" in formats:
            for i in keep:
                name = f"textgrids/{utterance_id(i)}.TextGrid"
                out.write(name, write_textgrid, tiers_of[utterance_id(i)], clock.duration(len(data.features[i])))
            written.append(f"textgrids/ ({len(keep)} files)")
        report = {"aligned": keep, "skipped": skipped}
        if evaluate:
            metrics = {}
            if data.alignments is not None:
                scores = AlignmentScores()
                for i in keep:
                    scores.add(positions[i], data.alignments[i])
                metrics.update(scores.result())
            else:
                say("the file has no true `alignments`: only the label error rate is measured")
            metrics["label_error_rate"] = label_error_rate(
                [out["hypothesis"] for out in outs], [data.labels[i].tolist() for i in keep]
            )
            metrics["sequences"] = len(keep)
            out.write("metrics.json", write_text, json.dumps(metrics, indent=2) + "\n")
            for key, value in metrics.items():
                print(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}")
            report["metrics"] = metrics
        out.finish()
    say(
        f"wrote {len(keep)} alignments to {out_dir}: {', '.join(written)}"
        + (f"; skipped {len(skipped)}" if skipped else "")
    )
    return report


def check_file_fits_run(data, arrays, run, data_path, say) -> None:
    """RunError where the file's features or classes are not the run's; a warning for renamed classes."""
    if data.feature_dim != run.feature_dim:
        raise RunError(
            f"{data_path}: features have {data.feature_dim} columns but the model of {run.run_dir} takes {run.feature_dim}"
        )
    if "vocab" in arrays and data.num_classes != run.num_classes:
        raise RunError(
            f"{data_path}: vocab has {data.num_classes} classes but {run.run_dir} was trained on {run.num_classes}"
        )
    if "vocab" not in arrays and data.num_classes > run.num_classes:
        raise RunError(
            f"{data_path}: labels use class id {data.num_classes - 1} but {run.run_dir} was trained on {run.num_classes} classes"
        )
    if "vocab" in arrays and data.vocab != run.vocab:
        c = next(c for c, (a, b) in enumerate(zip(data.vocab, run.vocab)) if a != b)
        say(f"warning: class {c} is {data.vocab[c]!r} in the file but {run.vocab[c]!r} in the run's training data")
