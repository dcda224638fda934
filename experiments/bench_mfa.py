"""jaxalign and the Montreal Forced Aligner (MFA) trained and aligned on the same corpus in one run, both
scored by one scorer against the corpus' true intervals.

    python experiments/bench_mfa.py CORPUS_DIR [--truth DIR] [--dictionary FILE] [--mfa PATH|none]
        [--jobs 2] [--work DIR] [--overwrite] [--json PATH] [--jaxalign-override KEY=VALUE ...]

CORPUS_DIR is `espeak_corpus.py --out`'s layout (corpus/: MFA's SPEAKER/NAME.wav + NAME.lab,
dictionary.txt, truth/: the true TextGrids at SPEAKER/NAME.TextGrid), or a corpus folder itself
with --truth (reference TextGrids, tiers `words` and `phones`) and --dictionary.

Each aligner trains on the corpus and aligns it, every step one child process:
- jaxalign with its shipped defaults (`data=corpus`, plus any --jaxalign-override, repeated, for quick
  tries): `python -m jaxalign.train`, then `python -m jaxalign.aligner.cli RUN CORPUS --out DIR`, with a
  fresh feature cache, from this checkout;
- MFA (`--mfa`, default `mfa-peer` or else `mfa` on PATH; `--mfa none` leaves it out): `mfa train CORPUS
  DICT MODEL.zip --output_directory OUT -j JOBS --clean`, which also writes alignments, then `mfa align`
  with the trained model, each with its own MFA_ROOT_DIR. Its row scores the align pass; train's own
  alignments are scored too (JSON). MFA not found: one line says so and jaxalign's rows still run.
Per step: wall seconds, CPU seconds (user + system of the child and of every descendant it waited for,
`os.wait4`) and peak memory: the largest resident set of one process (`ru_maxrss`) and, with psutil, the
summed resident set of the process tree sampled every 0.2 s (MFA's -j workers run side by side).

Scoring (`corpus_report.recordings` reads and pairs the TextGrids, one normalisation for both aligners):
empty labels (MFA 3.4.3 writes its pauses so) and sil, sp, <eps> (older MFAs') are pauses; words compare
lower-cased; `spn`, the phones MFA and jaxalign give a word the dictionary lacks (MFA keeps the word's
spelling in the words tier), stays a label, so those phones do not compare. A tier of a recording is
compared when its labels are the true ones; then every interval's begin and end is a boundary, error =
aligned - true. Reported: the share of word and phone boundaries within 10/20/50
ms, mean and median absolute error; word boundaries at pause edges (a word starting right after a
pause inside the utterance, a word ending right before one: the median signed error, > 0 late, and the
share within 20 ms) against those inside speech (junctions where the truth has no pause) and at the
utterance's ends; pauses inserted (junctions where the truth has none and the aligner a gap over 1 ms:
their share and median length) and missed (true pauses where the aligner has none); the headline
figures per speaker (a recording's first folder); with `pronunciations.csv` beside the truth folder
(`espeak_corpus.py --continuous`), how often the aligned phones of a word with several pronunciations are
the spoken ones, and the same for the dictionary's first-listed one (the baseline).

Output: a table (measures x aligners, with jaxalign/MFA ratios of times and memory), one per speaker,
and JSON (--json, default experiments/results/bench_mfa_<CORPUS_DIR's name>.json; names only, no paths).
The work folder (--work, default a new temporary folder, kept) holds jaxalign/{run,aligned} and
mfa/{model.zip,train_aligned,aligned}, and each step's log beside them.
"""

import argparse
import collections
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_report import PAUSE, junctions, pronunciation_report, read_dictionary, read_spoken, recordings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"
TIERS = ("words", "phones")
TOLERANCES_MS = (10, 20, 50)
EDGE_TOLERANCE_MS = 20  # the share within this at pause edges, inside speech and per speaker
PAUSE_LABELS = frozenset({"sil", "sp", "<eps>"})  # older MFAs'; empty labels are pauses too
EDGES = ("after_pause", "before_pause", "inside_speech", "utterance_start", "utterance_end")
SAMPLE_SECONDS = 0.2
SLACK = 1e-9  # seconds: a boundary exactly at a tolerance is within it despite float rounding


def run_measured(cmd: list[str], log: Path, env: dict) -> dict:
    """Runs `cmd` with its output to `log`: wall and CPU seconds, peak memory (see above), exit status."""
    try:
        import psutil
    except ImportError:
        psutil = None
    log.parent.mkdir(parents=True, exist_ok=True)
    tree_peak, done = [0], threading.Event()
    with open(log, "w") as out:
        tic = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        root = psutil.Process(proc.pid) if psutil else None  # not reaped before wait4: it exists

        def sample():
            while True:
                total = 0
                with contextlib.suppress(psutil.Error):
                    for p in [root, *root.children(recursive=True)]:
                        with contextlib.suppress(psutil.Error):
                            total += p.memory_info().rss
                tree_peak[0] = max(tree_peak[0], total)
                if done.wait(SAMPLE_SECONDS):
                    return

        sampler = threading.Thread(target=sample, daemon=True) if psutil else None
        if sampler:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - tic
        done.set()
        if sampler:
            sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait for it
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "peak_tree_rss_mb": round(tree_peak[0] / 2**20, 1) if psutil else None,
        "exit_status": proc.returncode,
    }


def failure(step: str, measured: dict, log: Path) -> str:
    """One line: which step failed, its exit status and the last line of its log that mentions an error
    (else its last line), and the log's name in the work folder."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    last = (errors or lines or ["no output"])[-1]
    where = f"{log.parent.name}/{log.name}"
    return f"{step} failed (exit status {measured['exit_status']}): {last} (log: {where} in the work folder)"


def run_jaxalign(corpus: Path, dictionary: Path, work: Path, overrides: list[str]) -> dict:
    """`jaxalign.train data=corpus` then `jaxalign.aligner.cli`, from this checkout, a fresh cache."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path, "JAXALIGN_CACHE_DIR": str(work / "cache")}
    run = work / "run"
    train_cmd = [sys.executable, "-m", "jaxalign.train", "data=corpus", f"data.root={corpus}"]
    train_cmd += [f"data.dictionary={dictionary}", f"hydra.run.dir={run}", *overrides]
    out = {"train": run_measured(train_cmd, work / "train.log", env)}
    if out["train"]["exit_status"]:
        return {**out, "failed": failure("jaxalign train", out["train"], work / "train.log")}
    align_cmd = [sys.executable, "-m", "jaxalign.aligner.cli", str(run), str(corpus), "--out", str(work / "aligned")]
    out["align"] = run_measured(align_cmd, work / "align.log", env)
    if out["align"]["exit_status"]:
        return {**out, "failed": failure("jaxalign align", out["align"], work / "align.log")}
    return out


def find_mfa(flag: str | None) -> str | None:
    """The MFA command: --mfa (a path or a name on PATH; `none`: no MFA), else `mfa-peer` or `mfa` on PATH."""
    if flag == "none":
        return None
    if flag:
        found = shutil.which(flag)
        if not found:
            raise SystemExit(f"bench_mfa: --mfa {flag}: not an executable file nor a command on PATH")
        return found
    return shutil.which("mfa-peer") or shutil.which("mfa")


def run_mfa(mfa: str, corpus: Path, dictionary: Path, work: Path, jobs: int) -> dict:
    """`mfa train` (which aligns too) then `mfa align` with the trained model, each step timed."""
    env = {**os.environ, "MFA_ROOT_DIR": str(work / "root")}
    version = subprocess.run([mfa, "version"], env=env, capture_output=True, text=True)
    out = {"version": (version.stdout.strip().splitlines() or ["unknown"])[-1]}
    model, common = work / "model.zip", ["-j", str(jobs), "--clean"]
    train_cmd = [mfa, "train", str(corpus), str(dictionary), str(model)]
    train_cmd += ["--output_directory", str(work / "train_aligned")]
    out["train"] = run_measured([*train_cmd, *common], work / "train.log", env)
    if out["train"]["exit_status"] or not model.is_file():
        return {**out, "failed": failure("mfa train", out["train"], work / "train.log")}
    align_cmd = [mfa, "align", str(corpus), str(dictionary), str(model), str(work / "aligned"), *common]
    out["align"] = run_measured(align_cmd, work / "align.log", env)
    if out["align"]["exit_status"]:
        return {**out, "failed": failure("mfa align", out["align"], work / "align.log")}
    return out


class Tally:
    """Signed boundary errors (seconds) and pause counts of a set of recordings."""

    def __init__(self):
        self.errors = {tier: [] for tier in TIERS}
        self.compared, self.mismatched, self.missing = ({tier: 0 for tier in TIERS} for _ in range(3))
        self.edges = {edge: [] for edge in EDGES}
        self.junctions_without_pause = self.true_pauses = self.missed = 0
        self.inserted: list[float] = []

    def add(self, pred: dict, true: dict) -> None:
        for tier in TIERS:
            if tier not in true:
                continue
            if tier not in pred:
                self.missing[tier] += 1
            elif [lab for *_, lab in pred[tier]] != [lab for *_, lab in true[tier]]:
                self.mismatched[tier] += 1
            else:
                self.compared[tier] += 1
                for (pb, pe, _), (tb, te, _) in zip(pred[tier], true[tier]):
                    self.errors[tier] += [pb - tb, pe - te]
        words, aligned = true.get("words"), pred.get("words")
        if not words or aligned is None or [w for *_, w in aligned] != [w for *_, w in words]:
            return  # the word edges and pauses of recordings whose aligned words are the true ones
        self.edges["utterance_start"].append(aligned[0][0] - words[0][0])
        self.edges["utterance_end"].append(aligned[-1][1] - words[-1][1])
        for true_gap, aligned_gap, end_error, begin_error in junctions(words, aligned):
            if true_gap > PAUSE:
                self.true_pauses += 1
                self.missed += aligned_gap <= PAUSE
                self.edges["before_pause"].append(end_error)
                self.edges["after_pause"].append(begin_error)
            else:
                self.junctions_without_pause += 1
                self.edges["inside_speech"] += [end_error, begin_error]
                if aligned_gap > PAUSE:
                    self.inserted.append(aligned_gap)

    def summary(self) -> dict:
        n = self.junctions_without_pause
        return {
            "tiers": {
                tier: {
                    **boundary_summary(self.errors[tier]),
                    "recordings": self.compared[tier],
                    "label_mismatches": self.mismatched[tier],
                    "missing": self.missing[tier],
                }
                for tier in TIERS
            },
            "word_edges": {edge: boundary_summary(self.edges[edge], (EDGE_TOLERANCE_MS,)) for edge in EDGES},
            "pauses": {
                "junctions_without_pause": n,
                "inserted": len(self.inserted) / n if n else None,
                "inserted_median_ms": 1000 * float(np.median(self.inserted)) if self.inserted else None,
                "true_pauses": self.true_pauses,
                "missed": self.missed / self.true_pauses if self.true_pauses else None,
            },
        }


def boundary_summary(signed, tolerances_ms=TOLERANCES_MS) -> dict:
    """Signed errors (seconds) -> count, share within each tolerance, mean/median absolute and median
    signed error in ms (None without boundaries)."""
    signed = np.asarray(signed, float)
    errors = np.abs(signed)
    some = len(errors) > 0
    return {
        "boundaries": len(errors),
        **{f"within_{t}ms": float(np.mean(errors <= t / 1000 + SLACK)) if some else None for t in tolerances_ms},
        "mean_abs_ms": float(1000 * errors.mean()) if some else None,
        "median_abs_ms": float(1000 * np.median(errors)) if some else None,
        "median_signed_ms": float(1000 * np.median(signed)) if some else None,
    }


def score(aligned_dir, truth_dir, spoken=None, dictionary=None) -> dict:
    """The accuracy above of the TextGrids under `aligned_dir` against those under `truth_dir`: the whole
    corpus and per speaker (a recording's first folder; `.` for recordings at the top); with the spoken
    pronunciations (`corpus_report.read_spoken`) and the dictionary, also how often the aligned phones of
    a word with several pronunciations are the spoken ones (`corpus_report.pronunciation_report`)."""
    total, speakers = Tally(), collections.defaultdict(Tally)
    for rel, pred, true in recordings(aligned_dir, truth_dir, TIERS, PAUSE_LABELS, lower=("words",)):
        total.add(pred, true)
        speakers[rel.parts[0] if len(rel.parts) > 1 else "."].add(pred, true)
    out = {**total.summary(), "speakers": {name: tally.summary() for name, tally in sorted(speakers.items())}}
    if spoken:
        out["pronunciations"] = pronunciation_report(aligned_dir, truth_dir, spoken, dictionary, ignore=PAUSE_LABELS)
    return out


def unknown_words(corpus: Path, dictionary: Path) -> set[str]:
    """The transcripts' words (.lab, lower-cased) that the dictionary does not list."""
    listed = {line.split("\t")[0].split()[0].lower() for line in dictionary.read_text(encoding="utf-8").splitlines() if line.strip()}  # fmt: skip
    return {w for lab in corpus.rglob("*.lab") for w in lab.read_text(encoding="utf-8").lower().split()} - listed


def audio_seconds(corpus: Path) -> float:
    import soundfile

    return sum(soundfile.info(str(p)).duration for p in corpus.rglob("*.wav"))


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _num(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def table_rows(row: dict, audio: float) -> list[tuple[str, str]]:
    """(measure, value) of one aligner's finished row, in the table's order."""
    train, align, acc = row["train"], row["align"], row["accuracy"]
    tiers, edges, pauses = acc["tiers"], acc["word_edges"], acc["pauses"]
    out = [
        ("train wall (s)", _num(train["wall_s"])),
        ("train CPU (s)", _num(train["cpu_s"])),
        ("align wall (s)", _num(align["wall_s"])),
        ("align CPU (s)", _num(align["cpu_s"])),
        ("align real-time factor (x)", _num(audio / align["wall_s"])),
        ("peak memory, one process (MB)", _num(max(train["peak_rss_mb"], align["peak_rss_mb"]), ".0f")),
        (
            "peak memory, process tree (MB)",
            _num(max(train["peak_tree_rss_mb"] or 0, align["peak_tree_rss_mb"] or 0) or None, ".0f"),
        ),  # fmt: skip
    ]
    for tier in TIERS:
        s = tiers[tier]
        out += [
            (
                f"{tier} within {'/'.join(map(str, TOLERANCES_MS))} ms (%)",
                " / ".join(_pct(s[f"within_{t}ms"]) for t in TOLERANCES_MS),
            ),  # fmt: skip
            (f"{tier} abs error mean / median (ms)", f"{_num(s['mean_abs_ms'])} / {_num(s['median_abs_ms'])}"),
            (
                f"{tier} recordings compared / label mismatch / missing",
                f"{s['recordings']} / {s['label_mismatches']} / {s['missing']}",
            ),  # fmt: skip
        ]
    for edge, name in (("after_pause", "word starts after a pause"), ("before_pause", "word ends before a pause"),
                       ("inside_speech", "word boundaries inside speech")):  # fmt: skip
        e = edges[edge]
        value = f"{_num(e['median_signed_ms'], '+.1f')} / {_pct(e[f'within_{EDGE_TOLERANCE_MS}ms'])}"
        out.append((f"{name}: median signed (ms) / within {EDGE_TOLERANCE_MS} ms (%)", value))
    out += [
        (
            "pauses inserted (% of junctions) / median (ms)",
            f"{_pct(pauses['inserted'])} / {_num(pauses['inserted_median_ms'], '.0f')}",
        ),  # fmt: skip
        ("true pauses missed (%)", _pct(pauses["missed"])),
    ]
    if "pronunciations" in acc:
        prons = acc["pronunciations"]
        value = f"{_pct(prons['aligned_is_spoken'])} of {prons['occurrences']} (first-listed {_pct(prons['first_listed_is_spoken'])})"  # fmt: skip
        out.append(("words with several pronunciations: the spoken one chosen (%)", value))
    return out


RATIO_ROWS = ("train wall (s)", "train CPU (s)", "align wall (s)", "align CPU (s)", "peak memory, one process (MB)",
              "peak memory, process tree (MB)")  # fmt: skip


def print_tables(result: dict) -> None:
    """The measures x aligners table (with jaxalign/MFA ratios) and the per-speaker one, as Markdown."""
    done = {name: row for name, row in result["aligners"].items() if "accuracy" in row}
    for name, row in result["aligners"].items():
        if name not in done:
            print(f"{name}: {row.get('skipped') or row.get('failed')}")
        if "train_accuracy" in row:
            words, phones = (row["train_accuracy"]["tiers"][t][f"within_{EDGE_TOLERANCE_MS}ms"] for t in TIERS)
            print(f"{name}: train's own alignments: words {_pct(words)} %, phones {_pct(phones)} % within {EDGE_TOLERANCE_MS} ms")  # fmt: skip
    if not done:
        return
    columns = {name: dict(table_rows(row, result["audio_seconds"])) for name, row in done.items()}
    header = ["measure", *done]
    ratio = len(done) == 2
    if ratio:
        header.append("/".join(done))
    lines = [header]
    for measure in next(iter(columns.values())):
        line = [measure, *(columns[name][measure] for name in done)]
        if ratio:
            a, b = (columns[name][measure] for name in done)
            line.append(f"{float(a) / float(b):.2f}" if measure in RATIO_ROWS and "-" not in (a, b) else "")
        lines.append(line)
    _print_markdown(lines)
    print()
    tol = EDGE_TOLERANCE_MS
    lines = [["speaker", "aligner", f"words within {tol} ms (%)", f"phones within {tol} ms (%)",
              "words median abs (ms)", "pauses inserted (%)", "pauses missed (%)"]]  # fmt: skip
    for speaker in next(iter(done.values()))["accuracy"]["speakers"]:
        for name, row in done.items():
            s = row["accuracy"]["speakers"][speaker]
            w, p = s["tiers"]["words"], s["tiers"]["phones"]
            lines.append([speaker, name, _pct(w[f"within_{tol}ms"]), _pct(p[f"within_{tol}ms"]),
                          _num(w["median_abs_ms"]), _pct(s["pauses"]["inserted"]), _pct(s["pauses"]["missed"])])  # fmt: skip
    _print_markdown(lines)


def _print_markdown(lines: list[list[str]]) -> None:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for k, line in enumerate(lines):
        print(
            "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))) + " |"
        )
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus_dir", type=Path, help="espeak_corpus.py's --out (corpus/, dictionary.txt, truth/), or a corpus folder")  # fmt: skip
    parser.add_argument("--truth", type=Path, default=None, help="true TextGrids (default: CORPUS_DIR/truth)")
    parser.add_argument("--dictionary", type=Path, default=None, help="default: CORPUS_DIR/dictionary.txt")
    parser.add_argument("--mfa", default=None, help="the mfa command (default: mfa-peer, else mfa, on PATH); none: skip MFA")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="MFA's -j")
    parser.add_argument("--jaxalign-override", action="append", default=[], metavar="KEY=VALUE", help="a Hydra override for jaxalign.train (repeatable)")  # fmt: skip
    parser.add_argument("--work", type=Path, default=None, help="work folder, kept (default: a new temporary one)")
    parser.add_argument("--overwrite", action="store_true", help="replace --work's jaxalign/ and mfa/ from an earlier run")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="default: experiments/results/bench_mfa_<CORPUS_DIR name>.json")  # fmt: skip
    args = parser.parse_args(argv)
    corpus = (args.corpus_dir / "corpus" if (args.corpus_dir / "corpus").is_dir() else args.corpus_dir).resolve()
    truth = (args.truth or args.corpus_dir / "truth").resolve()
    dictionary = (args.dictionary or args.corpus_dir / "dictionary.txt").resolve()
    if not any(corpus.rglob("*.wav")):
        parser.error(f"CORPUS_DIR {args.corpus_dir}: no .wav files under {corpus}")
    if not dictionary.is_file():
        parser.error(f"--dictionary {dictionary}: no such file (default: CORPUS_DIR/dictionary.txt)")
    if not any(truth.rglob("*.TextGrid")):
        parser.error(f"--truth {truth}: no .TextGrid files (default: CORPUS_DIR/truth)")
    bad = [o for o in args.jaxalign_override if "=" not in o]
    if bad:
        parser.error(f"--jaxalign-override {bad[0]!r}: expected KEY=VALUE, e.g. trainer.steps=300")
    mfa = find_mfa(args.mfa)
    work = (args.work or Path(tempfile.mkdtemp(prefix="bench_mfa_"))).resolve()
    for sub in ("jaxalign", "mfa"):
        if (work / sub).exists():
            if not args.overwrite:
                parser.error(f"--work {work}: {sub}/ is there from an earlier run; pass --overwrite to replace it")
            shutil.rmtree(work / sub)
    print(f"work folder: {work}", flush=True)
    unknown = unknown_words(corpus, dictionary)
    if unknown:
        listed = ", ".join(sorted(unknown)[:5]) + (", ..." if len(unknown) > 5 else "")
        print(f"{len(unknown)} transcript words not in the dictionary ({listed}): both aligners align them as "
              "spoken noise (spn), and a tier whose labels are not the truth's is not compared")  # fmt: skip
    audio = audio_seconds(corpus)
    spoken_csv = truth.parent / "pronunciations.csv"  # espeak_corpus.py --continuous writes it beside truth/
    pronunciations = (read_spoken(spoken_csv), read_dictionary(dictionary)) if spoken_csv.is_file() else ()
    result = {
        "corpus": args.corpus_dir.resolve().name,  # names only: no machine's paths in the results
        "recordings": sum(1 for _ in corpus.rglob("*.wav")),
        "audio_seconds": round(audio, 1),
        "cpu_count": os.cpu_count(),
        "jaxalign_overrides": args.jaxalign_override,
        "unknown_words": sorted(unknown),
        "aligners": {},
    }
    print("jaxalign: training and aligning", flush=True)
    result["aligners"]["jaxalign"] = run_jaxalign(corpus, dictionary, work / "jaxalign", args.jaxalign_override)
    if "failed" not in result["aligners"]["jaxalign"]:
        result["aligners"]["jaxalign"]["accuracy"] = score(work / "jaxalign" / "aligned", truth, *pronunciations)
    if mfa is None:
        why = "--mfa none" if args.mfa == "none" else "neither mfa-peer nor mfa on PATH; give --mfa PATH"
        result["aligners"]["mfa"] = {"skipped": f"skipped: {why}"}
    else:
        print(f"mfa: training and aligning with {mfa}", flush=True)
        row = result["aligners"]["mfa"] = run_mfa(mfa, corpus, dictionary, work / "mfa", args.jobs)
        if (work / "mfa" / "model.zip").is_file():
            row["train_accuracy"] = score(work / "mfa" / "train_aligned", truth, *pronunciations)  # train's own
        if "failed" not in row:
            row["accuracy"] = score(work / "mfa" / "aligned", truth, *pronunciations)
    print()
    print_tables(result)
    path = args.json or RESULTS / f"bench_mfa_{result['corpus']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}; TextGrids under {work}")


if __name__ == "__main__":
    main()
