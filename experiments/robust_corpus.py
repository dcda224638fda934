"""Writes a robustness corpus: continuous espeak speech with other voices, noise, gain drift and weak sounds at pauses.

    python experiments/robust_corpus.py --out OUT [--voices en-us+klatt,en+whisper,en-us+f3,en-gb-scotland+klatt4]
        [--utterances-per-speaker 40] [--snr-db 10,20] [--colours white,pink,brown] [--level-db -18,0]
        [--drift-db 6] [--weak-edge-probability 0.6] [--comma-probability 0.3] [--seed 0] [--overwrite]

The layout of `espeak_corpus.py --continuous` (corpus/, truth/, dictionary.txt, truth.csv,
pronunciations.csv) plus conditions.csv (each recording's voice, rate, pitch, SNR, noise colour, level and
drift); see `jaxalign.data.robust_corpus`. `experiments/corpus_report.py ALIGNED OUT/truth` scores it.
"""

import argparse
import json

from jaxalign.data.robust_corpus import NOISE_COLOURS, ROBUST_VOICES, write_robust_corpus
from jaxalign.errors import EspeakCorpusError


def _pair(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--voices", default=",".join(ROBUST_VOICES), help="comma-separated espeak voices")
    parser.add_argument("--utterances-per-speaker", type=int, default=40)
    parser.add_argument("--min-words", type=int, default=3)
    parser.add_argument("--max-words", type=int, default=10)
    parser.add_argument("--comma-probability", type=float, default=0.3)
    parser.add_argument("--weak-edge-probability", type=float, default=0.6, help="weak sounds next to pauses")
    parser.add_argument("--snr-db", type=_pair, default=(10.0, 20.0), help="LOW,HIGH drawn per recording")
    parser.add_argument("--colours", default=",".join(NOISE_COLOURS), help="noise colours drawn per recording")
    parser.add_argument("--level-db", type=_pair, default=(-18.0, 0.0), help="LOW,HIGH gain across recordings")
    parser.add_argument("--drift-db", type=float, default=6.0, help="gain swing within a recording")
    parser.add_argument("--sample-rate", type=int, default=22050)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--words", default=None, help="word list, one a line (default: the built-in words)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        summary = write_robust_corpus(
            args.out,
            voices=[v for v in args.voices.split(",") if v],
            utterances_per_speaker=args.utterances_per_speaker,
            min_words=args.min_words,
            max_words=args.max_words,
            comma_probability=args.comma_probability,
            weak_edge_probability=args.weak_edge_probability,
            snr_db=args.snr_db,
            colours=tuple(c for c in args.colours.split(",") if c),
            level_db=args.level_db,
            drift_db=args.drift_db,
            sample_rate=args.sample_rate,
            seed=args.seed,
            words=args.words,
            overwrite=args.overwrite,
        )
    except EspeakCorpusError as err:
        parser.error(str(err))
    print(json.dumps({k: summary[k] for k in ("recordings", "words", "seconds", "speakers", "elapsed_seconds")}))
    print(
        f"next: python -m jaxalign.train data=corpus data.root={summary['corpus']} data.dictionary={summary['dictionary']}"
    )


if __name__ == "__main__":
    main()
