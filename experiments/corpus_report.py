"""Boundary accuracy of aligned TextGrids against the true ones of a corpus (e.g. `espeak_corpus.py`'s).

    python experiments/corpus_report.py ALIGNED_DIR TRUTH_DIR [--json [PATH]] [--tolerance-ms 20]
        [--tiers words,phones] [--ignore-labels sil,sp,_] [--pronunciations CSV] [--dictionary TXT]

For every `*.TextGrid` under TRUTH_DIR, reads the TextGrid at the same relative path under ALIGNED_DIR
(`jaxalign-align`'s and MFA's SPEAKER/UTTID.TextGrid layout) and compares each tier's non-empty intervals
(`jaxalign.decoding.boundary_agreement`): a recording counts when its label sequence matches the truth's,
and then every interval's begin and end is a boundary. Labels in --ignore-labels (aligners' silence
names) are dropped first. `missing`: recordings with no aligned TextGrid, or none with that tier.
Prints a table per tier; --json writes the same (default path experiments/results/corpus_report.json).

Pronunciations: when the truth has the spoken pronunciation of every word (`pronunciations.csv` beside
TRUTH_DIR, from `espeak_corpus.py --continuous`, or --pronunciations) and a dictionary (`dictionary.txt`
beside it, or --dictionary), the report adds, over the occurrences of words the dictionary lists more than
one pronunciation for, in recordings whose aligned words tier has the true words: the share whose aligned
phones (those whose midpoint lies inside the aligned word) are the spoken pronunciation, and the same share
for the dictionary's first-listed pronunciation, the baseline of always choosing it.

Pauses: over the recordings whose aligned words are the true words, every junction between two words
where the truth has no pause (the next word starts where the last ends): how many the aligner put a
pause into (a gap over 1 ms between its words; their median length), and how many of the junction's two
word boundaries (the end of one word, the start of the next) are within the tolerance; and of the
junctions where the truth pauses, how many the aligner missed (no gap over 1 ms).

Pause edges: over the same recordings, the start of every word the truth has a pause before (a gap over
1 ms after the previous word, or the recording's leading silence) and the end of every word it has a pause
after (or the trailing silence): the median SIGNED error, aligned minus true (a word starting late or
ending early: the pause took the edge of the speech, + for starts, - for ends), and the share within the
tolerance.
"""

import argparse
import collections
import csv
import json
from pathlib import Path

import numpy as np

from jaxalign.decoding import boundary_agreement

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "corpus_report.json"
PAUSE = 0.001  # seconds: a gap between two words longer than this is a pause


def read_tiers(path: Path, names, ignore, lower=()) -> dict[str, list[tuple[float, float, str]]]:
    """{tier name: [(begin, end, label)]} of the named interval tiers present, empty labels and those in
    `ignore` dropped; the labels of the tiers in `lower` lower-cased (words compared regardless of case)."""
    from praatio import textgrid

    grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    out = {}
    for name in names:
        if name in grid.tierNames:
            entries = [
                (float(b), float(e), lab.lower() if name in lower else lab) for b, e, lab in grid.getTier(name).entries
            ]
            out[name] = [(b, e, lab) for b, e, lab in entries if lab.strip() and lab not in ignore]
    return out


def recordings(aligned_dir, truth_dir, tiers, ignore=(), lower=()):
    """Per `*.TextGrid` under `truth_dir`, in order: (its path relative to `truth_dir`, the aligned tiers
    of the TextGrid at that path under `aligned_dir` ({} when there is none), the true tiers)."""
    aligned_dir, truth_dir = Path(aligned_dir), Path(truth_dir)
    paths = sorted(truth_dir.rglob("*.TextGrid"))
    if not paths:
        raise SystemExit(f"corpus_report: no *.TextGrid under {truth_dir}")
    for path in paths:
        rel = path.relative_to(truth_dir)
        other = aligned_dir / rel
        pred = read_tiers(other, tiers, ignore, lower) if other.is_file() else {}
        yield rel, pred, read_tiers(path, tiers, ignore, lower)


def report(aligned_dir, truth_dir, *, tiers=("words", "phones"), tolerance: float = 0.020, ignore=()) -> dict:
    pairs = {name: ([], []) for name in tiers}
    missing = dict.fromkeys(tiers, 0)
    for _, pred, true in recordings(aligned_dir, truth_dir, tiers, ignore):
        for name in tiers:
            if name not in true:
                continue
            if name not in pred:
                missing[name] += 1
                continue
            pairs[name][0].append(pred[name])
            pairs[name][1].append(true[name])
    out = {"aligned": str(aligned_dir), "truth": str(truth_dir), "tolerance_ms": tolerance * 1000, "tiers": {}}
    for name in tiers:
        scores = boundary_agreement(*pairs[name], tolerance=tolerance)
        out["tiers"][name] = {**scores, "missing": missing[name]}
    return out


def read_dictionary(path) -> dict[str, list[str]]:
    """MFA `word<TAB>ph ph` lines -> {word: [pronunciation, ...]} in the file's order."""
    prons = collections.defaultdict(list)
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            word, _, phones = line.partition("\t")
            prons[word].append(" ".join(phones.split()))
    return dict(prons)


def read_spoken(path) -> dict[str, list[tuple[str, str]]]:
    """`pronunciations.csv` -> {recording: [(word, spoken pronunciation)] in the order spoken}."""
    spoken = collections.defaultdict(dict)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            spoken[row["recording"]][int(row["index"])] = (row["word"], row["pronunciation"])
    return {rec: [words[i] for i in sorted(words)] for rec, words in spoken.items()}


def pronunciation_report(aligned_dir, truth_dir, spoken, dictionary, *, ignore=()) -> dict:
    """How often the aligned phones of a word with several pronunciations are the spoken ones (see above)."""
    occurrences = aligned_right = first_right = skipped = 0
    for rel, pred, _ in recordings(aligned_dir, truth_dir, ("words", "phones"), ignore):
        said = spoken.get(rel.with_suffix("").as_posix())
        if said is None or len(pred) < 2 or [w for *_, w in pred["words"]] != [w for w, _ in said]:
            skipped += said is not None
            continue
        for (begin, end, word), (_, pron) in zip(pred["words"], said):
            if len(dictionary.get(word, ())) < 2:
                continue
            phones = " ".join(p for b, e, p in pred["phones"] if begin <= (b + e) / 2 < end)
            occurrences += 1
            aligned_right += phones == pron
            first_right += dictionary[word][0] == pron
    return {
        "occurrences": occurrences,
        "aligned_is_spoken": aligned_right / occurrences if occurrences else None,
        "first_listed_is_spoken": first_right / occurrences if occurrences else None,
        "recordings_skipped": skipped,
    }


def junctions(true, pred) -> list[tuple[float, float, float, float]]:
    """Per two neighbouring words of one recording whose aligned words (`pred`) are the true ones, both
    [(begin, end, word)]: (the true gap between them, the aligned gap, the aligned minus the true end of
    the first word, the same for the begin of the second), in seconds."""
    return [
        (t_begin - t_end, p_begin - p_end, p_end - t_end, p_begin - t_begin)
        for (_, t_end, _), (t_begin, _, _), (_, p_end, _), (p_begin, _, _) in zip(true, true[1:], pred, pred[1:])
    ]


def pause_report(aligned_dir, truth_dir, *, tolerance: float = 0.020, ignore=()) -> dict:
    """Pauses inserted where the truth has none, and word boundaries at those junctions (see above); and
    the true pauses the aligner missed (no gap over 1 ms between its words there)."""
    junctions_without = inserted = within = true_pauses = missed = 0
    lengths, skipped = [], 0
    for _, pred, true in recordings(aligned_dir, truth_dir, ("words",), ignore):
        true, pred = true.get("words", []), pred.get("words", [])
        if [w for *_, w in pred] != [w for *_, w in true]:
            skipped += 1
            continue
        for true_gap, aligned_gap, end_error, begin_error in junctions(true, pred):
            if true_gap > PAUSE:
                true_pauses += 1
                missed += aligned_gap <= PAUSE
                continue
            junctions_without += 1
            if aligned_gap > PAUSE:
                inserted += 1
                lengths.append(aligned_gap)
            within += (abs(end_error) <= tolerance + 1e-9) + (abs(begin_error) <= tolerance + 1e-9)
    return {
        "junctions_without_pause": junctions_without,
        "pause_inserted": inserted / junctions_without if junctions_without else None,
        "inserted_median_ms": 1000 * float(sorted(lengths)[len(lengths) // 2]) if lengths else None,
        "boundaries_within_tolerance": within / (2 * junctions_without) if junctions_without else None,
        "true_pauses": true_pauses,
        "pause_missed": missed / true_pauses if true_pauses else None,
        "recordings_skipped": skipped,
    }


def pause_edge_report(aligned_dir, truth_dir, *, tolerance: float = 0.020, ignore=()) -> dict:
    """Word boundaries at the truth's pauses (see above): signed errors (aligned minus true) of the starts
    of words after a pause and the ends of words before one, their medians and shares within tolerance."""
    after, before, skipped = [], [], 0
    for path in sorted(Path(truth_dir).rglob("*.TextGrid")):
        other = Path(aligned_dir) / path.relative_to(truth_dir)
        true = read_tiers(path, ("words",), ignore).get("words", [])
        pred = read_tiers(other, ("words",), ignore).get("words", []) if other.is_file() else []
        if not true or [w for *_, w in pred] != [w for *_, w in true]:
            skipped += 1
            continue
        duration = _duration(path)
        ends = [0.0] + [e for _, e, _ in true]
        starts = [b for b, _, _ in true] + [duration]
        for k, ((t_begin, t_end, _), (p_begin, p_end, _)) in enumerate(zip(true, pred)):
            if t_begin - ends[k] > 0.001:
                after.append(p_begin - t_begin)
            if starts[k + 1] - t_end > 0.001:
                before.append(p_end - t_end)

    def summary(errors):
        if not errors:
            return {"boundaries": 0, "median_signed_ms": None, "within_tolerance": None}
        within = sum(abs(e) <= tolerance + 1e-9 for e in errors) / len(errors)
        return {
            "boundaries": len(errors),
            "median_signed_ms": 1000 * float(np.median(errors)),
            "within_tolerance": within,
        }

    return {"start_after_pause": summary(after), "end_before_pause": summary(before), "recordings_skipped": skipped}


def _duration(path: Path) -> float:
    from praatio import textgrid

    return float(textgrid.openTextgrid(str(path), includeEmptyIntervals=False).maxTimestamp)


def _fmt(value, spec) -> str:
    return "-" if value is None else format(value, spec)


def _percent(share):
    return None if share is None else 100 * share


def print_table(result: dict) -> None:
    tol = f"within {result['tolerance_ms']:g} ms"
    header = ("tier", "boundaries", f"{tol} (%)", "mean (ms)", "median (ms)", "compared", "label mismatch", "missing")
    rows = [
        (
            name,
            str(s["boundaries"]),
            _fmt(_percent(s["within_tolerance"]), ".1f"),
            _fmt(s["mean_error_ms"], ".1f"),
            _fmt(s["median_error_ms"], ".1f"),
            str(s["recordings"]),
            str(s["label_mismatches"]),
            str(s["missing"]),
        )
        for name, s in result["tiers"].items()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("aligned_dir", help="aligned TextGrids, SPEAKER/UTTID.TextGrid as under TRUTH_DIR")
    parser.add_argument("truth_dir", help="true TextGrids, e.g. OUT/truth of espeak_corpus.py")
    parser.add_argument("--json", nargs="?", const=str(DEFAULT_JSON), default=None, help="write the report as JSON")
    parser.add_argument("--tolerance-ms", type=float, default=20.0)
    parser.add_argument("--tiers", default="words,phones", help="comma-separated interval tier names")
    parser.add_argument("--ignore-labels", default="sil,sp,_", help="comma-separated labels dropped before comparing")
    parser.add_argument("--pronunciations", default=None, help="spoken pronunciations (default: beside TRUTH_DIR)")
    parser.add_argument("--dictionary", default=None, help="the dictionary aligned with (default: beside TRUTH_DIR)")
    args = parser.parse_args(argv)
    ignore = frozenset(t for t in args.ignore_labels.split(",") if t)
    result = report(
        args.aligned_dir,
        args.truth_dir,
        tiers=tuple(t for t in args.tiers.split(",") if t),
        tolerance=args.tolerance_ms / 1000,
        ignore=ignore,
    )
    print_table(result)
    pauses = pause_report(args.aligned_dir, args.truth_dir, tolerance=args.tolerance_ms / 1000, ignore=ignore)
    result["pauses"] = pauses
    if pauses["junctions_without_pause"]:
        print(
            f"pauses: {pauses['junctions_without_pause']} word junctions without a pause; a pause inserted into "
            f"{100 * pauses['pause_inserted']:.1f}% (median {_fmt(pauses['inserted_median_ms'], '.0f')} ms); their "
            f"word boundaries within {args.tolerance_ms:g} ms: {100 * pauses['boundaries_within_tolerance']:.1f}%; "
            f"{pauses['true_pauses']} true pauses, {_fmt(_percent(pauses['pause_missed']), '.1f')}% missed "
            f"({pauses['recordings_skipped']} recordings skipped: other words)"
        )
    edges = pause_edge_report(args.aligned_dir, args.truth_dir, tolerance=args.tolerance_ms / 1000, ignore=ignore)
    result["pause_edges"] = edges
    for key, what in (
        ("start_after_pause", "word starts after a pause"),
        ("end_before_pause", "word ends before a pause"),
    ):
        e = edges[key]
        if e["boundaries"]:
            print(
                f"pause edges: {e['boundaries']} {what}: median signed error {e['median_signed_ms']:+.1f} ms "
                f"(aligned minus true), {100 * e['within_tolerance']:.1f}% within {args.tolerance_ms:g} ms"
            )
    beside = Path(args.truth_dir).resolve().parent
    spoken_path = Path(args.pronunciations or beside / "pronunciations.csv")
    dictionary_path = Path(args.dictionary or beside / "dictionary.txt")
    if spoken_path.is_file() and dictionary_path.is_file():
        spoken, dictionary = read_spoken(spoken_path), read_dictionary(dictionary_path)
        prons = pronunciation_report(args.aligned_dir, args.truth_dir, spoken, dictionary, ignore=ignore)
        result["pronunciations"] = prons
        aligned, first = (
            _fmt(_percent(x), ".1f") for x in (prons["aligned_is_spoken"], prons["first_listed_is_spoken"])
        )
        print(
            f"pronunciations: {prons['occurrences']} occurrences of words with several; the aligned phones are "
            f"the spoken ones in {aligned}%, the first-listed pronunciation in {first}% "
            f"({prons['recordings_skipped']} recordings skipped: no aligned words and phones, or other words)"
        )
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
