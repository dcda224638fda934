"""data.oov=spn measured: a corpus aligned with its full dictionary vs with words removed from it.

python experiments/oov_spn.py dictionary OUT [--fraction 0.02] [--seed 0]
    writes OUT/dictionary_unknown.txt (OUT/dictionary.txt of espeak_corpus.py less words whose
    tokens make up about --fraction of the corpus' word tokens) and OUT/unknown_words.txt
python experiments/oov_spn.py report OUT NAME=ALIGNED_DIR ... [--json PATH]
    per aligned folder: recordings aligned, and `corpus_report`'s boundary accuracy over the known
    words (the unknown words dropped from both sides), over the phones, and over the unknown words.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_report import report  # noqa: E402

SILENCES = {"sil", "sp", "_"}


def corpus_tokens(corpus: Path) -> list[str]:
    return [w.casefold() for lab in sorted(corpus.rglob("*.lab")) for w in lab.read_text(encoding="utf-8").split()]


def remove_words(out: Path, fraction: float, seed: int) -> list[str]:
    """Words removed at random (seeded) from those said once, until they are `fraction` of the tokens;
    not one whose recording holds a phone that no other recording has (a recording with an unknown
    word trains nothing, so that phone would be unknown to the run and the recording unaligned)."""
    tokens = corpus_tokens(out / "corpus")
    words, counts = np.unique(tokens, return_counts=True)
    lines = (out / "dictionary.txt").read_text(encoding="utf-8").splitlines()
    phones = {}
    for line in lines:
        word, _, pron = line.partition("\t")
        phones.setdefault(word.casefold(), pron.split())
    labs = {lab: lab.read_text(encoding="utf-8").casefold().split() for lab in sorted((out / "corpus").rglob("*.lab"))}
    heard = {lab: {p for w in ws for p in phones.get(w, [])} for lab, ws in labs.items()}

    def only_here(lab):
        return heard[lab] - set().union(*(h for other, h in heard.items() if other != lab))

    once = [w for w in words[counts == 1] if not any(w in ws and only_here(lab) for lab, ws in labs.items())]
    order = np.random.default_rng(seed).permutation(len(once))
    removed = sorted(once[i] for i in order[: int(round(fraction * len(tokens)))])
    kept = [line for line in lines if line.split("\t")[0].casefold() not in set(removed)]
    (out / "dictionary_unknown.txt").write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    (out / "unknown_words.txt").write_text("".join(w + "\n" for w in removed), encoding="utf-8")
    print(f"{len(removed)} of {len(tokens)} word tokens ({100 * len(removed) / len(tokens):.1f} %) are now unknown: "
          f"{' '.join(removed)} -> {out / 'dictionary_unknown.txt'}")  # fmt: skip
    return removed


def measure(out: Path, aligned: dict[str, Path]) -> dict:
    unknown = set((out / "unknown_words.txt").read_text(encoding="utf-8").split())
    known = set(corpus_tokens(out / "corpus")) - unknown
    truth = out / "truth"
    total = len(list(truth.rglob("*.TextGrid")))
    result = {
        "corpus": "espeak_corpus.py --speakers 3 --utterances-per-speaker 30 --sample-rate 16000 --seed 1",
        "runs_trained": "data=corpus +debug=tiny trainer.steps=1000 model.hidden=64 seed=0|1, the full dictionary "
        "(full*) or OUT/dictionary_unknown.txt (spn*, data.oov=spn)",
        "unknown_words": sorted(unknown),
        "word_tokens": len(corpus_tokens(out / "corpus")),
        "runs": {},
    }
    for name, folder in aligned.items():
        known_only = report(folder, truth, tiers=("words", "phones"), ignore=frozenset(SILENCES | unknown))
        unknown_only = report(folder, truth, tiers=("words",), ignore=frozenset(SILENCES | known))
        result["runs"][name] = {
            "recordings": total,
            "recordings_aligned": sum((folder / p.relative_to(truth)).is_file() for p in truth.rglob("*.TextGrid")),
            "known_words": known_only["tiers"]["words"],
            "phones": known_only["tiers"]["phones"],
            "unknown_words": unknown_only["tiers"]["words"],
        }
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dictionary")
    d.add_argument("out", type=Path, help="espeak_corpus.py's --out")
    d.add_argument("--fraction", type=float, default=0.02)
    d.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("report")
    r.add_argument("out", type=Path)
    r.add_argument("aligned", nargs="+", help="NAME=ALIGNED_DIR")
    r.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "dictionary":
        remove_words(args.out, args.fraction, args.seed)
        return
    result = measure(args.out, dict(a.split("=", 1) for a in args.aligned))
    for name, run in result["runs"].items():
        w, u, p = run["known_words"], run["unknown_words"], run["phones"]
        pct = lambda s: "-" if s["within_tolerance"] is None else f"{100 * s['within_tolerance']:.1f} %"  # noqa: E731
        print(f"{name}: {run['recordings_aligned']}/{run['recordings']} recordings aligned; known words within 20 ms "
              f"{pct(w)} of {w['boundaries']} boundaries (mean {w['mean_error_ms']:.1f} ms); unknown words "
              f"{pct(u)} of {u['boundaries']}; phones {pct(p)} of {p['boundaries']} ({p['recordings']} recordings)")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
