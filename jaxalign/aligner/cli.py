"""`jaxalign-align RUN_DIR DATA.npz --out DIR [--format npz,ctm,textgrid] [--frame-shift 0.01] [--evaluate]`
and `jaxalign-align RUN_DIR CORPUS_DIR --out DIR [--dictionary FILE]`.

A corpus folder (audio with word transcripts, as for `data=corpus`) is aligned by a data=corpus run
into TextGrids with word and phone tiers (`jaxalign.corpus_align`). Otherwise the command force-aligns every sequence of a bring-your-own `.npz` file (labels required; see README) with a
trained order_sync or seq2seq run (seq2seq: the path through the attention of the decode forced
onto the given labels), its config and latest checkpoint, and writes one alignment per sequence:
`DIR/alignments.npz`, `DIR/alignments.ctm`, `DIR/textgrids/seq_00000.TextGrid`, ...
A sequence whose target needs more frames than it has is skipped and named; the rest are written.
"""

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

FORMATS = ("npz", "ctm", "textgrid")
OUTPUTS = ("alignments.npz", "alignments.ctm", "metrics.json", "textgrids")  # what --overwrite clears


def say(message: str) -> None:
    print(f"jaxalign-align: {message}", file=sys.stderr, flush=True)


def prepare_out(out_dir: Path, overwrite: bool) -> None:
    """Checks `out_dir` before any model runs: refuses a path under a file, a file, (without
    `overwrite`) a non-empty folder, and a folder that cannot be written; creates nothing."""
    from jaxalign.inference import RunError

    existing = next(p for p in [out_dir, *out_dir.parents] if p.exists())
    if not existing.is_dir():
        raise RunError(f"--out {out_dir}: {existing} is a file, not a folder")
    if existing == out_dir and any(out_dir.iterdir()) and not overwrite:
        raise RunError(f"--out {out_dir} is not empty; pass --overwrite to replace its earlier alignments")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"--out {out_dir}: {existing} is not writable")


def clear_outputs(out_dir: Path) -> None:
    """Deletes this command's earlier outputs (`OUTPUTS`) in `out_dir`; other files stay."""
    for name in OUTPUTS:
        old = out_dir / name
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)


def align_file(
    run_dir, data_path, out_dir, *, formats=FORMATS, frame_shift=0.01, evaluate=False, step=None, overwrite=False
) -> dict:
    """Aligns `data_path` with the run in `run_dir` and writes `formats` into `out_dir` (see
    `prepare_out` for `overwrite`). Returns {"aligned": [indices], "skipped": [indices], "metrics":
    {...} (with evaluate)}. A file in which no sequence can be aligned is a RunError: nothing is
    written and no metric is reported."""
    import numpy as np

    from jaxalign.config import load_config
    from jaxalign.data import read_arrays, to_sequences
    from jaxalign.decoding import AlignmentScores, label_error_rate
    from jaxalign.export import intervals, utterance_id, write_ctm, write_npz, write_textgrid
    from jaxalign.inference import RunError, load_run
    from jaxalign.setups import SETUPS

    name = load_config(Path(run_dir) / ".hydra" / "config.yaml").setup.name
    if not SETUPS[name].aligns:  # before restoring: its checkpoint holds another head
        raise RunError(
            f"{run_dir} was trained with setup={name}, which gives no alignments; use a setup=order_sync or setup=seq2seq run"
        )
    if not (math.isfinite(frame_shift) and frame_shift > 0):
        raise RunError(f"--frame-shift must be a finite number of seconds > 0, got {frame_shift}")
    arrays = read_arrays(data_path, long_targets=True)
    data = to_sequences(arrays)
    out_dir = Path(out_dir)
    prepare_out(out_dir, overwrite)
    run = load_run(run_dir, step=step)
    if data.feature_dim != run.feature_dim:
        raise RunError(
            f"{data_path}: features have {data.feature_dim} columns but the model of {run_dir} takes {run.feature_dim}"
        )
    if "vocab" in arrays and data.num_classes != run.num_classes:
        raise RunError(
            f"{data_path}: vocab has {data.num_classes} classes but {run_dir} was trained on {run.num_classes}"
        )
    if "vocab" not in arrays and data.num_classes > run.num_classes:
        raise RunError(
            f"{data_path}: labels use class id {data.num_classes - 1} but {run_dir} was trained on {run.num_classes} classes"
        )
    if "vocab" in arrays and data.vocab != run.vocab:
        c = next(c for c, (a, b) in enumerate(zip(data.vocab, run.vocab)) if a != b)
        say(f"warning: class {c} is {data.vocab[c]!r} in the file but {run.vocab[c]!r} in the run's training data")
    say(f"{run_dir}: setup={run.config.setup.name}, checkpoint step {run.step}; {len(data)} sequences from {data_path}")

    k = run.setup.states_per_symbol
    feasible = run.feasible(data.frame_lengths(), data.labels)
    keep, skipped = [int(i) for i in np.flatnonzero(feasible)], [int(i) for i in np.flatnonzero(~feasible)]
    for i in skipped:
        x, y = data.features[i], data.labels[i]
        rows = f" ({len(y) * k} grid rows at {k} states per symbol)" if k > 1 else ""
        say(f"skipped sequence {i}: its target has {len(y)} symbols{rows} but only {len(x)} frames")

    if not keep:
        raise RunError(
            f"{data_path}: none of its {len(data)} sequences can be aligned (every target needs more frames than it has)"
        )
    outs = run.outputs([data.features[i] for i in keep], [data.labels[i] for i in keep])
    positions = {i: out["positions"] for i, out in zip(keep, outs)}
    segments = {i: intervals(positions[i], data.labels[i], data.vocab, frame_shift) for i in keep}
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_outputs(out_dir)
    written = []
    if "npz" in formats:
        written.append(write_npz(out_dir / "alignments.npz", positions).name)
    if "ctm" in formats:
        written.append(write_ctm(out_dir / "alignments.ctm", segments).name)
    if "textgrid" in formats:
        (out_dir / "textgrids").mkdir(exist_ok=True)
        for i in keep:
            write_textgrid(
                out_dir / "textgrids" / f"{utterance_id(i)}.TextGrid",
                segments[i],
                round(len(data.features[i]) * frame_shift, 9),
            )
        written.append(f"textgrids/ ({len(keep)} files)")
    say(
        f"wrote {len(keep)} alignments to {out_dir}: {', '.join(written)}"
        + (f"; skipped {len(skipped)}" if skipped else "")
    )

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
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        for key, value in metrics.items():
            print(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}")
        report["metrics"] = metrics
    return report


def clear_corpus_outputs(out_dir: Path) -> None:
    """Deletes an earlier corpus alignment in `out_dir`: its CSVs and the TextGrids its
    alignments.csv names (other files, other TextGrids too, stay)."""
    import csv

    from jaxalign.corpus_align import OUTPUTS as CORPUS_OUTPUTS

    listed = out_dir / "alignments.csv"
    if listed.is_file():
        with open(listed, newline="", encoding="utf-8") as f:
            for recording in {row["recording"] for row in csv.DictReader(f)}:
                (out_dir / f"{recording}.TextGrid").unlink(missing_ok=True)
    for name in CORPUS_OUTPUTS:
        (out_dir / name).unlink(missing_ok=True)


def align_corpus_dir(run_dir, corpus_dir, out_dir, *, dictionary=None, step=None, overwrite=False) -> dict:
    """`jaxalign-align RUN CORPUS_DIR --out DIR`: TextGrids, alignments.csv and unaligned.csv (see
    `jaxalign.corpus_align`); earlier outputs in DIR are replaced only with `overwrite`."""
    from jaxalign.corpus_align import align_corpus
    from jaxalign.inference import RunError, load_run

    out_dir, corpus = Path(out_dir).resolve(), Path(corpus_dir).resolve()
    if out_dir == corpus or corpus in out_dir.parents:
        raise RunError(f"--out {out_dir} is inside the corpus {corpus_dir}: its TextGrids would be read as transcripts")
    if out_dir in corpus.parents:
        raise RunError(f"--out {out_dir} holds the corpus {corpus_dir}: choose a folder beside it")
    prepare_out(out_dir, overwrite)
    run = load_run(run_dir, step=step)
    run.require_alignments()
    say(f"{run_dir}: setup={run.config.setup.name}, checkpoint step {run.step}; aligning the corpus {corpus_dir}")
    clear_corpus_outputs(out_dir)
    report = align_corpus(run, corpus_dir, out_dir, dictionary=dictionary, say=say)
    if not report["aligned"]:
        raise RunError(
            f"none of the {report['recordings']} recordings of {corpus_dir} could be aligned; "
            f"the reasons are in {out_dir / 'unaligned.csv'}"
        )
    say(
        f"aligned {report['aligned']} of {report['recordings']} recordings ({report['audio_seconds']:.1f} s of audio) "
        f"in {report['seconds']:.1f} s, {report['real_time_factor']:.0f}x real time -> {out_dir}/ "
        f"(SPEAKER/NAME.TextGrid, alignments.csv"
        + (f"; {report['unaligned']} unaligned, listed in unaligned.csv)" if report["unaligned"] else ")")
    )
    return report


def parse_formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(
            f"unknown format {unknown[0] if unknown else text!r}; choose from {','.join(FORMATS)}"
        )
    return formats


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="jaxalign-align",
        description="Force-align every sequence of a bring-your-own .npz file (labels required) with a trained "
        "setup=order_sync or setup=seq2seq run (its config and latest checkpoint); write one alignment per sequence.",
    )
    parser.add_argument("run_dir", help="a jaxalign-train run directory (.hydra/config.yaml and checkpoints/)")
    parser.add_argument(
        "data",
        help="the .npz file (features, feature_lengths, labels, label_lengths; optional alignments, vocab), or a "
        "corpus folder (SPEAKER/NAME.wav with NAME.lab, .txt or .TextGrid) for a data=corpus run",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--format",
        type=parse_formats,
        default=FORMATS,
        help="comma-separated subset of npz,ctm,textgrid (default: all)",
    )
    parser.add_argument(
        "--frame-shift", type=float, default=0.01, help="seconds per frame for CTM and TextGrid times (default 0.01)"
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="print alignment accuracy, boundary error and label error rate against the file's true alignments",
    )
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    parser.add_argument(
        "--dictionary",
        default=None,
        help="corpus folders: the pronunciation dictionary (default: RUN_DIR/dictionary.txt)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"write into a non-empty --out, deleting its earlier outputs first ({', '.join(OUTPUTS)}; for a corpus: "
        "alignments.csv, unaligned.csv and the TextGrids alignments.csv names)",
    )
    args = parser.parse_args(argv)
    if not (math.isfinite(args.frame_shift) and args.frame_shift > 0):
        parser.error(f"--frame-shift must be a finite number of seconds > 0, got {args.frame_shift}")
    return args


def main(argv=None) -> None:
    """The console entry point `jaxalign-align`: bad input ends with one line and exit status 1."""
    args = parse_args(argv)
    from jaxalign.config import ConfigError
    from jaxalign.data import DataFileError
    from jaxalign.inference import RunError
    from jaxalign.runtime import configure_jax
    from jaxalign.training.checkpoints import CheckpointError

    configure_jax()
    from jaxalign.data.corpus import CorpusError

    try:
        if Path(args.data).is_dir():
            align_corpus_dir(
                args.run_dir, args.data, args.out, dictionary=args.dictionary, step=args.step, overwrite=args.overwrite
            )
            return
        align_file(
            args.run_dir,
            args.data,
            args.out,
            formats=args.format,
            frame_shift=args.frame_shift,
            evaluate=args.evaluate,
            step=args.step,
            overwrite=args.overwrite,
        )
    except (RunError, ConfigError, DataFileError, CheckpointError, CorpusError, FileNotFoundError) as err:
        if os.environ.get("JAXALIGN_FULL_ERROR") == "1":
            raise
        say(f"error: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
