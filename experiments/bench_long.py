"""One long recording, force-aligned by `jaxalign-align`: 10, 30 and 60 minutes of concatenated speech.

    python experiments/bench_long.py RUN_DIR [--minutes 10,30,60] [--out experiments/results/bench_long.json]

RUN_DIR is a trained speech run (e.g. `jaxalign-train +experiment=spoken_phones`). The recordings
are the run's own test utterances (data=spoken_words: espeak-ng words with true phone boundaries)
put end to end, cycling through them until the length is reached, with their true alignments. For
each length, two `jaxalign-align --evaluate` processes, each timed as a whole (start-up included)
with its peak memory (the child's maximum resident set):
- `long`: the recording as one sequence, which jaxalign-align aligns in a band around a first pass
  (`jaxalign.align.long`), the net run over it in overlapping windows;
- `pieces`: the same utterances as separate sequences, aligned one by one as usual.
The alignment accuracy of the two is compared (target: within 1 point). Separately, on the first
length, the chunked net's log-probs are compared with one pass of the net over the whole input.

`--parts aligner` (in one process) separates the aligner from the net: the pieces' own log-probs,
put end to end, aligned as one long sequence by `jaxalign.align.long.long_viterbi`, against the
pieces aligned one by one (`Run.align`). That difference is the long-recording method's own; the
end-to-end one adds what the net does with a stream it never saw in training (the built-in spoken
words are isolated words, each with its own silences).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GNU_TIME = "/usr/bin/time"  # Debian's `time` package: apt-get install time


def recording(data, frames: int):
    """(features, labels, alignments) of one sequence of about `frames` frames, and the pieces."""
    feats, labels, alis, pieces, total, i = [], [], [], [], 0, 0
    while total < frames:
        j = i % len(data)
        feats.append(data.features[j])
        alis.append(data.alignments[j] + sum(len(y) for y in labels))
        labels.append(data.labels[j])
        pieces.append(j)
        total += len(data.features[j])
        i += 1
    return np.concatenate(feats), np.concatenate(labels), np.concatenate(alis), pieces


def align(run_dir: Path, path: Path, out: Path) -> dict:
    """One `jaxalign-align --evaluate` process: wall seconds, its peak memory, its metrics and its
    long-recording console lines. The peak is GNU time's `%M` of the process it starts: a child
    forked from this (large) process would count this one's pages in its own maximum."""
    command = [sys.executable, "-m", "jaxalign.aligner.cli", str(run_dir), str(path), "--out", str(out), "--evaluate"]
    command += ["--format", "npz"]
    with tempfile.NamedTemporaryFile("w+", suffix=".rss") as rss:
        start = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", rss.name, *command], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        peak_kib = int(Path(rss.name).read_text().split()[-1])
    if proc.returncode != 0:
        raise SystemExit(f"jaxalign-align failed:\n{proc.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    band = [line for line in proc.stderr.splitlines() if "aligned in a band" in line or "WARNING" in line]
    return {"seconds": seconds, "peak_rss_bytes": peak_kib * 1024, "metrics": metrics, "console": band}


def chunking_effect(run, features) -> dict:
    """How far the chunked net's log-probs move from one pass over the whole input."""
    from jaxalign.aligner import run as inference

    chunked = run.chunked_log_probs(features)
    saved = inference.LONG_FRAMES, inference.LONG_GRID_CELLS
    inference.LONG_FRAMES = inference.LONG_GRID_CELLS = 10**12  # one pass, however long
    try:
        whole = run.log_probs([features])[0]
    finally:
        inference.LONG_FRAMES, inference.LONG_GRID_CELLS = saved
    diff = np.abs(np.exp(chunked) - np.exp(whole))
    return {
        "frames": len(features),
        "max_abs_prob_diff": float(diff.max()),
        "mean_abs_prob_diff": float(diff.mean()),
        "argmax_changed": float(np.mean(chunked.argmax(1) != whole.argmax(1))),
        "chunk_frames": inference.CHUNK_FRAMES,
        "overlap_frames": inference.CHUNK_OVERLAP,
    }


def aligner_only(run, test, pieces, truth) -> dict:
    """The long-recording aligner on the pieces' own log-probs, against the pieces one by one."""
    from jaxalign.align.grid import substate_labels
    from jaxalign.align.long import long_viterbi
    from jaxalign.decoding import AlignmentScores

    features, labels = [test.features[j] for j in pieces], [test.labels[j] for j in pieces]
    offsets = np.cumsum([0] + [len(y) for y in labels[:-1]])
    one_by_one = np.concatenate([p + o for p, o in zip(run.align(features, labels), offsets)])
    k, classes = run.setup.states_per_symbol, run.num_classes
    log_probs = np.concatenate(run.log_probs(features))[:, : classes * k]
    log_probs -= np.logaddexp.reduce(log_probs, axis=1, keepdims=True)
    symbols = np.concatenate(labels)
    rows = np.asarray(substate_labels(symbols[None], np.zeros((1, len(symbols))), k)[0][0])
    start = time.perf_counter()
    found = long_viterbi(log_probs, rows, symbols, k)
    seconds = time.perf_counter() - start
    scores = {}
    for name, positions in (("long", found.positions // k), ("pieces", one_by_one)):
        found_scores = AlignmentScores()
        found_scores.add(positions, truth)
        scores[name] = found_scores.result()
    return {
        "seconds_align_only": seconds,
        "band_width": found.width,
        "touched_edge": found.touched_edge,
        "long": scores["long"],
        "pieces": scores["pieces"],
        "same_path_frames": float(np.mean(found.positions // k == one_by_one)),
        "accuracy_difference_points": 100
        * (scores["long"]["alignment_accuracy"] - scores["pieces"]["alignment_accuracy"]),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--minutes", default="10,30,60")
    parser.add_argument("--frame-shift", type=float, default=0.01, help="seconds per frame of the run's features")
    parser.add_argument(
        "--parts", default="cli", choices=("cli", "aligner"), help="jaxalign-align end to end, or the aligner alone"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: experiments/results/bench_long[_aligner].json")
    args = parser.parse_args(argv)
    results = Path(__file__).parent / "results"
    args.out = args.out or results / ("bench_long.json" if args.parts == "cli" else "bench_long_aligner.json")

    import jaxalign
    from jaxalign.data import write_arrays
    from jaxalign.data.load import load_splits

    run = jaxalign.load_run(args.run_dir)
    test = load_splits(run.config.data).test
    rows, work = [], Path(tempfile.mkdtemp(prefix="bench_long_"))
    for minutes in (int(m) for m in args.minutes.split(",")):
        features, labels, truth, pieces = recording(test, int(minutes * 60 / args.frame_shift))
        if args.parts == "aligner":
            row = {"minutes": minutes, "frames": len(features), "grid_rows": len(labels) * run.setup.states_per_symbol}
            row.update(aligner_only(run, test, pieces, truth))
            rows.append(row)
            print(
                f"{minutes:>3} min, {len(features)} frames x {row['grid_rows']} rows: long_viterbi {row['seconds_align_only']:.0f} s "
                f"(band {row['band_width']}, edge touched: {row['touched_edge']}), alignment "
                f"{row['long']['alignment_accuracy']:.2%} vs pieces {row['pieces']['alignment_accuracy']:.2%} "
                f"({row['accuracy_difference_points']:+.2f} points; the same row on {row['same_path_frames']:.2%} of frames)",
                flush=True,
            )
            continue
        one = write_arrays(work / f"long_{minutes}.npz", [features], [labels], alignments=[truth], vocab=test.vocab)
        many = write_arrays(
            work / f"pieces_{minutes}.npz",
            [test.features[j] for j in pieces],
            [test.labels[j] for j in pieces],
            alignments=[test.alignments[j] for j in pieces],
            vocab=test.vocab,
        )
        long = align(args.run_dir, one, work / f"out_long_{minutes}")
        each = align(args.run_dir, many, work / f"out_pieces_{minutes}")
        row = {
            "minutes": minutes,
            "frames": len(features),
            "phones": len(labels),
            "grid_rows": len(labels) * run.setup.states_per_symbol,
            "long": long,
            "pieces": each,
            "accuracy_difference_points": 100
            * (long["metrics"]["alignment_accuracy"] - each["metrics"]["alignment_accuracy"]),
        }
        rows.append(row)
        gib = long["peak_rss_bytes"] / 2**30
        print(
            f"{minutes:>3} min: {len(features)} frames, {row['grid_rows']} rows | long: {long['seconds']:.0f} s, "
            f"peak {gib:.2f} GiB, alignment {long['metrics']['alignment_accuracy']:.2%} | pieces: "
            f"{each['seconds']:.0f} s, alignment {each['metrics']['alignment_accuracy']:.2%} | "
            f"difference {row['accuracy_difference_points']:+.2f} points",
            flush=True,
        )

    if args.parts == "aligner":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"run_dir": Path(args.run_dir).name, "rows": rows}, indent=1) + "\n")
        print(f"wrote {args.out}")
        return 0
    print(
        "\n| minutes | frames | grid rows | long: wall s | long: peak GiB | long: align | pieces: wall s | pieces: align | difference |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        gib = r["long"]["peak_rss_bytes"] / 2**30
        print(
            f"| {r['minutes']} | {r['frames']} | {r['grid_rows']} | {r['long']['seconds']:.0f} | {gib:.2f} | "
            f"{r['long']['metrics']['alignment_accuracy']:.2%} | {r['pieces']['seconds']:.0f} | "
            f"{r['pieces']['metrics']['alignment_accuracy']:.2%} | {r['accuracy_difference_points']:+.2f} |"
        )
    # Last, in this process: the whole-input pass is large, and no measured child is started after it.
    rows[0]["chunking"] = chunking_effect(run, recording(test, rows[0]["frames"])[0])
    chunk = rows[0]["chunking"]
    if chunk:
        print(
            f"\nchunked net ({chunk['chunk_frames']}-frame windows, {chunk['overlap_frames']} frames of context each side) vs one "
            f"pass over {chunk['frames']} frames: max |dp| {chunk['max_abs_prob_diff']:.2e}, mean {chunk['mean_abs_prob_diff']:.2e}, "
            f"argmax changed on {chunk['argmax_changed']:.3%} of frames"
        )
    record = {
        "run_dir": Path(args.run_dir).name,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
