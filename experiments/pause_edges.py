"""Why a pause takes the edges of speech: the frames at every true pause edge of an aligned corpus.

    python experiments/pause_edges.py RUN CORPUS ALIGNED [--json PATH]

CORPUS is a folder written by `espeak_corpus.py --continuous` or `robust_corpus.py` (corpus/, truth/ and,
if there, conditions.csv); ALIGNED holds `jaxalign-align RUN CORPUS/corpus`'s TextGrids. For every word
start after a true pause and word end before one (as `corpus_report.py`'s pause edges), in recordings
whose aligned words are the true words, it takes the signed error (aligned minus true; + late start, -
early end) and, over the 3 frames of the word next to the true edge ("edge frames"):
- p_sil: the net's mean posterior of the silence class (`symbol_log_posteriors`),
- contrast_db: their raw log-mel energy (mean over mels, before normalisation) minus that of the 3 pause
  frames on the other side of the edge, in dB,
- norm_energy: their mean normalised feature (the net's input, `data.normalise` of the run),
and groups them by the edge phone (weak: h f T s, espeak's names, or not), SNR, level, noise colour and
voice (from conditions.csv). Prints one table per grouping: count, median signed error, share within
20 ms, and the medians of p_sil, contrast_db and norm_energy.
"""

import argparse
import collections
import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

WEAK_PHONES = frozenset({"h", "f", "T", "s"})
EDGE_FRAMES = 3
DB = 10 / math.log(10)  # natural-log power -> dB


def edges(truth_path, aligned_path):
    """[(kind, signed error s, true time s, edge phone)] of one recording; None if the words differ."""
    from praatio import textgrid

    grid = textgrid.openTextgrid(str(truth_path), includeEmptyIntervals=False)
    words = [tuple(e) for e in grid.getTier("words").entries]
    phones = [tuple(e) for e in grid.getTier("phones").entries]
    if not aligned_path.is_file():
        return None
    pred = [tuple(e) for e in textgrid.openTextgrid(str(aligned_path), False).getTier("words").entries]
    pred = [e for e in pred if e[2] not in ("sil", "")]
    if [w for *_, w in pred] != [w for *_, w in words]:
        return None
    duration = float(grid.maxTimestamp)
    ends = [0.0] + [float(e) for _, e, _ in words]
    starts = [float(b) for b, _, _ in words] + [duration]
    out = []
    for k, ((tb, te, _), (pb, pe, _)) in enumerate(zip(words, pred)):
        inside = [p for a, b, p in phones if tb - 1e-6 <= a and b <= te + 1e-6]
        if float(tb) - ends[k] > 0.001:
            out.append(("start", float(pb) - float(tb), float(tb), inside[0]))
        if starts[k + 1] - float(te) > 0.001:
            out.append(("end", float(pe) - float(te), float(te), inside[-1]))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("corpus", help="the generator's output folder (corpus/, truth/, conditions.csv)")
    parser.add_argument("aligned")
    parser.add_argument("--json", default=None, help="write every edge's numbers as JSON")
    args = parser.parse_args(argv)

    import jaxalign
    from jaxalign.data.corpus import CorpusSpec, load_corpus
    from jaxalign.data.load import spec_from_config

    run = jaxalign.load_run(args.run)
    root = Path(args.corpus)
    spec = dataclasses.replace(spec_from_config(CorpusSpec, run.config.data), root=str(root / "corpus"))
    quiet = lambda line: None  # noqa: E731
    normed = {u.recording.id: u for u in load_corpus(spec, say=quiet).utterances}
    raw = {
        u.recording.id: u.features
        for u in load_corpus(dataclasses.replace(spec, normalise="none"), say=quiet).utterances
    }
    conditions = {}
    if (root / "conditions.csv").is_file():
        with open(root / "conditions.csv", newline="") as f:
            conditions = {row["recording"]: row for row in csv.DictReader(f)}
    clock = run.clock
    silence = run.vocab.index(spec.silence)
    ids = sorted(normed)
    outs = run.outputs([normed[i].features for i in ids])
    rows = []
    for rid, out in zip(ids, outs):
        found = edges(root / "truth" / f"{rid}.TextGrid", Path(args.aligned) / f"{rid}.TextGrid")
        if found is None:
            continue
        post = np.exp(run.setup.symbol_log_posteriors(out["log_probs"]))
        energy, normal = raw[rid].mean(axis=1), normed[rid].features.mean(axis=1)
        n = len(energy)
        cond = conditions.get(rid, {})
        for kind, error, time, phone in found:
            t = int(round((time - clock.offset) / clock.hop))
            word = range(t, t + EDGE_FRAMES) if kind == "start" else range(t - EDGE_FRAMES, t)
            pause = range(t - EDGE_FRAMES, t) if kind == "start" else range(t, t + EDGE_FRAMES)
            word, pause = [i for i in word if 0 <= i < n], [i for i in pause if 0 <= i < n]
            if not word or not pause:
                continue
            rows.append({
                "recording": rid, "kind": kind, "error_ms": 1000 * error, "phone": phone,
                "weak": phone in WEAK_PHONES, "p_sil": float(post[word, silence].mean()),
                "contrast_db": DB * float(energy[word].mean() - energy[pause].mean()),
                "norm_energy": float(normal[word].mean()),
                "snr_db": float(cond.get("snr_db", "nan")), "level_db": float(cond.get("level_db", "nan")),
                "colour": cond.get("colour", "-"), "voice": cond.get("voice", rid.split("/")[0]),
            })  # fmt: skip
    groupings = {
        "edge phone": lambda r: "weak (h f T s)" if r["weak"] else "other",
        "SNR": lambda r: "-" if math.isnan(r["snr_db"]) else "10-15 dB" if r["snr_db"] < 15 else "15-20 dB",
        "level": lambda r: "-" if math.isnan(r["level_db"]) else "< -9 dB" if r["level_db"] < -9 else ">= -9 dB",
        "colour": lambda r: r["colour"],
        "voice": lambda r: r["voice"],
        "p_sil": lambda r: "p_sil > 0.5" if r["p_sil"] > 0.5 else "p_sil <= 0.5",
    }
    for kind in ("start", "end"):
        mine = [r for r in rows if r["kind"] == kind]
        print(f"\nword {kind}s {'after' if kind == 'start' else 'before'} a pause: {len(mine)}")
        for name, key in groupings.items():
            groups = collections.defaultdict(list)
            for r in mine:
                groups[key(r)].append(r)
            for label in sorted(groups):
                g = groups[label]

                def med(field, g=g):
                    return float(np.median([r[field] for r in g]))

                within = np.mean([abs(r["error_ms"]) <= 20 for r in g])
                print(
                    f"  {name:10s} {label:22s} n={len(g):4d}  median error {med('error_ms'):+6.1f} ms  "
                    f"within 20 ms {100 * within:5.1f}%  p_sil {med('p_sil'):.2f}  contrast {med('contrast_db'):+5.1f} dB  "
                    f"norm energy {med('norm_energy'):+5.2f}"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
