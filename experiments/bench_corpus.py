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
3. Confidence, on two damaged copies of the corpus, each aligned the same way:
   - swapped: a third of the recordings get another recording's transcript; a recording's score is
     the mean confidence of its words (`jaxalign.aligner.corpus`);
   - one word wrong: in a third of the recordings one word is replaced by another word of the
     dictionary; each word's confidence is its score.
   The table gives the mean score of the intact and the damaged ones and the AUC: the chance that
   a random damaged one scores below a random intact one (1.0 separates them perfectly, 0.5 not at
   all). A damaged transcript that no longer fits its audio's length is unaligned, not scored.
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


def one_word_wrong_copy(corpus: Path, dest: Path, dictionary: Path, fraction: float, seed: int) -> set[tuple[str, int]]:
    """`dest`: links to `corpus`'s audio and its transcripts, in a `fraction` of them one word
    replaced by another word of `dictionary`. Returns the (recording id, word index) replaced."""
    words = sorted({line.split("\t")[0] for line in dictionary.read_text(encoding="utf-8").splitlines() if line})
    labs = sorted(corpus.rglob("*.lab"))
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(len(labs), size=max(2, int(fraction * len(labs))), replace=False).tolist())
    replaced = set()
    for i, lab in enumerate(labs):
        rel = lab.relative_to(corpus)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(lab.with_suffix(".wav").resolve(), (dest / rel).with_suffix(".wav"))
        text = lab.read_text().split()
        if i in chosen:
            at = int(rng.integers(len(text)))
            text[at] = str(rng.choice([w for w in words if w != text[at]]))
            replaced.add((rel.with_suffix("").as_posix(), at))
        (dest / rel).write_text(" ".join(text) + "\n")
    return replaced


def word_scores(alignments_csv: Path) -> dict[tuple[str, int], float]:
    """Each word's confidence, keyed (recording, index of the word in its transcript)."""
    out, count = {}, {}
    with open(alignments_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row["tier"] == "words":
                at = count.get(row["recording"], 0)
                out[(row["recording"], at)] = float(row["confidence"])
                count[row["recording"]] = at + 1
    return out


def separation(bad: list[float], good: list[float]) -> dict:
    return {
        "intact": len(good),
        "damaged": len(bad),
        "intact_mean": round(float(np.mean(good)), 3),
        "damaged_mean": round(float(np.mean(bad)), 3),
        "auc": round(auc(bad, good), 4),
    }


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
    one_dir = work / "one_word_corpus"
    replaced = one_word_wrong_copy(corpus, one_dir, args.corpus_out / "dictionary.txt", args.swap_fraction, seed=1)
    align(args.run_dir, one_dir, work / "one_word", env)
    words = word_scores(work / "one_word" / "alignments.csv")
    damaged_recordings = {r for r, _ in replaced}
    bad = [s for r, s in scores.items() if r in swapped]
    good = [s for r, s in scores.items() if r not in swapped]
    result = {
        "run_dir": args.run_dir.name,  # names only: no machine's paths in the results
        "corpus": f"{args.corpus_out.name}/corpus",
        "recordings": len(list(corpus.rglob("*.wav"))),
        "audio_seconds": round(audio, 1),
        "align_wall_seconds": round(seconds, 2),
        "real_time_factor": round(audio / seconds, 1),
        "boundaries": accuracy["tiers"],
        "confidence_swapped_transcripts": separation(bad, good),
        "confidence_one_word_wrong": separation(
            [s for key, s in words.items() if key in replaced],
            [s for (r, at), s in words.items() if r not in damaged_recordings],
        ),
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
    for name in ("swapped_transcripts", "one_word_wrong"):
        c = result[f"confidence_{name}"]
        print(f"{'confidence ' + name + ', intact / damaged':<40} {c['intact_mean']:>5} / {c['damaged_mean']}")
        print(f"{'AUC ' + name + ' (damaged below intact)':<40} {c['auc']:>10} ({c['damaged']} damaged)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
