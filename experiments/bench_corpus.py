"""Forced alignment of a corpus folder, end to end: speed, boundary accuracy, and whether the
confidence finds bad transcripts.

    python experiments/bench_corpus.py RUN_DIR CORPUS_OUT [--json PATH]

CORPUS_OUT is what `experiments/espeak_corpus.py --out CORPUS_OUT` wrote (corpus/, truth/,
dictionary.txt); RUN_DIR a `jaxalign-train data=corpus` run. Three measurements:
1. Speed: `jaxalign-align RUN_DIR CORPUS_OUT/corpus --out ...` as a fresh process (start-up, loading
   the run, reading audio and features, compiling, aligning, writing), timed whole; the real-time
   factor is audio seconds per wall second. The feature cache is emptied first, so the features
   are computed inside the timed run, as for a user's first alignment.
2. Accuracy: `corpus_report.report` of those TextGrids against the truth: the share of word and
   phone boundaries within 20 ms, and the mean error in ms.
3. Confidence: a copy of the corpus whose transcripts are swapped for a third of the recordings
   (each given another recording's words), aligned the same way. A recording's score is the mean
   confidence of its words (`jaxalign.corpus_align`); the table reports the mean score of intact
   and swapped recordings and the AUC (the chance that a random swapped recording scores below a
   random intact one: 1.0 separates them perfectly, 0.5 not at all).
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_report import report  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bench_corpus.json"


def align(run_dir: Path, corpus: Path, out: Path, env: dict) -> float:
    """Wall seconds of one `jaxalign-align` process."""
    tic = time.perf_counter()
    subprocess.run(["jaxalign-align", str(run_dir), str(corpus), "--out", str(out)], check=True, env=env)
    return time.perf_counter() - tic


def audio_seconds(corpus: Path) -> float:
    import soundfile

    return sum(soundfile.info(str(p)).duration for p in corpus.rglob("*.wav"))


def swapped_copy(corpus: Path, dest: Path, fraction: float, seed: int) -> set[str]:
    """`dest`: links to `corpus`'s audio, its transcripts, a `fraction` of them rotated among
    themselves (each a different recording's words). Returns the swapped recording ids."""
    labs = sorted(corpus.rglob("*.lab"))
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(labs), size=max(2, int(fraction * len(labs))), replace=False).tolist())
    texts = {i: labs[i].read_text() for i in chosen}
    rotated = {chosen[j]: texts[chosen[(j + 1) % len(chosen)]] for j in range(len(chosen))}
    swapped = set()
    for i, lab in enumerate(labs):
        rel = lab.relative_to(corpus)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(lab.with_suffix(".wav").resolve(), (dest / rel).with_suffix(".wav"))
        text = rotated.get(i, texts.get(i, lab.read_text()))
        (dest / rel).write_text(text)
        if i in rotated and rotated[i].split() != labs[i].read_text().split():
            swapped.add(rel.with_suffix("").as_posix())
    return swapped


def recording_scores(alignments_csv: Path) -> dict[str, float]:
    """Mean word confidence per recording."""
    scores: dict[str, list[float]] = {}
    with open(alignments_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row["tier"] == "words":
                scores.setdefault(row["recording"], []).append(float(row["confidence"]))
    return {r: float(np.mean(v)) for r, v in scores.items()}


def auc(low: list[float], high: list[float]) -> float:
    """P(a value of `low` < a value of `high`), ties counting half."""
    low, high = np.asarray(low)[:, None], np.asarray(high)[None, :]
    return float(np.mean((low < high) + 0.5 * (low == high)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("corpus_out", type=Path, help="espeak_corpus.py's --out (corpus/, truth/)")
    parser.add_argument("--swap-fraction", type=float, default=1 / 3)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    corpus, truth = args.corpus_out / "corpus", args.corpus_out / "truth"
    work = Path(tempfile.mkdtemp(prefix="bench_corpus_"))
    env = {**os.environ, "JAXALIGN_CACHE_DIR": str(work / "cache")}  # a cold feature cache; XLA's too
    seconds = align(args.run_dir, corpus, work / "aligned", env)
    audio = audio_seconds(corpus)
    accuracy = report(work / "aligned", truth)
    swapped_dir = work / "swapped_corpus"
    swapped = swapped_copy(corpus, swapped_dir, args.swap_fraction, seed=0)
    align(args.run_dir, swapped_dir, work / "swapped", env)
    scores = recording_scores(work / "swapped" / "alignments.csv")
    bad = [s for r, s in scores.items() if r in swapped]
    good = [s for r, s in scores.items() if r not in swapped]
    result = {
        "run_dir": str(args.run_dir),
        "corpus": str(corpus),
        "recordings": len(list(corpus.rglob("*.wav"))),
        "audio_seconds": round(audio, 1),
        "align_wall_seconds": round(seconds, 2),
        "real_time_factor": round(audio / seconds, 1),
        "boundaries": accuracy["tiers"],
        "confidence": {
            "intact_recordings": len(good),
            "swapped_recordings": len(bad),
            "intact_mean": round(float(np.mean(good)), 3),
            "swapped_mean": round(float(np.mean(bad)), 3),
            "auc": round(auc(bad, good), 4),
        },
        "cpu_count": os.cpu_count(),
    }
    shutil.rmtree(work, ignore_errors=True)
    print(f"{'measure':<40} {'value':>10}")
    print(f"{'audio (s)':<40} {result['audio_seconds']:>10}")
    print(f"{'jaxalign-align wall, start-up incl. (s)':<40} {result['align_wall_seconds']:>10}")
    print(f"{'real-time factor (x)':<40} {result['real_time_factor']:>10}")
    for tier, row in accuracy["tiers"].items():
        share = row["within_tolerance"]
        print(
            f"{tier + ' boundaries within 20 ms (%)':<40} {100 * share if share is not None else float('nan'):>10.1f}"
        )
        print(f"{tier + ' mean boundary error (ms)':<40} {row['mean_error_ms'] or float('nan'):>10.1f}")
        print(f"{tier + ' recordings compared / mismatched':<40} {row['recordings']:>5} / {row['label_mismatches']}")
    c = result["confidence"]
    print(f"{'mean word confidence, intact / swapped':<40} {c['intact_mean']:>5} / {c['swapped_mean']}")
    print(f"{'AUC swapped below intact':<40} {c['auc']:>10}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
