"""Boundary accuracy of aligned TextGrids against the true ones of a corpus (e.g. `espeak_corpus.py`'s).

    python experiments/corpus_report.py ALIGNED_DIR TRUTH_DIR [--json [PATH]] [--tolerance-ms 20]
        [--tiers words,phones] [--ignore-labels sil,sp,_]

For every `*.TextGrid` under TRUTH_DIR, reads the TextGrid at the same relative path under ALIGNED_DIR
(`jaxalign-align`'s and MFA's SPEAKER/UTTID.TextGrid layout) and compares each tier's non-empty intervals
(`jaxalign.decoding.boundary_agreement`): a recording counts when its label sequence matches the truth's,
and then every interval's begin and end is a boundary. Labels in --ignore-labels (aligners' silence
names) are dropped first. `missing`: recordings with no aligned TextGrid, or none with that tier.
Prints a table per tier; --json writes the same (default path experiments/results/corpus_report.json).
"""

import argparse
import json
from pathlib import Path

from jaxalign.decoding import boundary_agreement

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "corpus_report.json"


def read_tiers(path: Path, names, ignore) -> dict[str, list[tuple[float, float, str]]]:
    """{tier name: [(begin, end, label)]} of the named interval tiers present, empty labels dropped."""
    from praatio import textgrid

    grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    out = {}
    for name in names:
        if name in grid.tierNames:
            entries = grid.getTier(name).entries
            out[name] = [(float(b), float(e), lab) for b, e, lab in entries if lab.strip() and lab not in ignore]
    return out


def report(aligned_dir, truth_dir, *, tiers=("words", "phones"), tolerance: float = 0.020, ignore=()) -> dict:
    aligned_dir, truth_dir = Path(aligned_dir), Path(truth_dir)
    paths = sorted(truth_dir.rglob("*.TextGrid"))
    if not paths:
        raise SystemExit(f"corpus_report: no *.TextGrid under {truth_dir}")
    pairs = {name: ([], []) for name in tiers}
    missing = dict.fromkeys(tiers, 0)
    for path in paths:
        rel = path.relative_to(truth_dir)
        true = read_tiers(path, tiers, ignore)
        other = aligned_dir / rel
        pred = read_tiers(other, tiers, ignore) if other.is_file() else {}
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


def _fmt(value, spec) -> str:
    return "-" if value is None else format(value, spec)


def print_table(result: dict) -> None:
    tol = f"within {result['tolerance_ms']:g} ms"
    header = ("tier", "boundaries", f"{tol} (%)", "mean (ms)", "median (ms)", "compared", "label mismatch", "missing")
    rows = [
        (
            name,
            str(s["boundaries"]),
            _fmt(None if s["within_tolerance"] is None else 100 * s["within_tolerance"], ".1f"),
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
    args = parser.parse_args(argv)
    result = report(
        args.aligned_dir,
        args.truth_dir,
        tiers=tuple(t for t in args.tiers.split(",") if t),
        tolerance=args.tolerance_ms / 1000,
        ignore=frozenset(t for t in args.ignore_labels.split(",") if t),
    )
    print_table(result)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
