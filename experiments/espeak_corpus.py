"""Writes a synthetic forced-alignment corpus (MFA layout) with espeak-ng, and its true intervals.

    python experiments/espeak_corpus.py --out OUT [--speakers 5] [--utterances-per-speaker 40] [--seed 0]
        [--sample-rate 22050] [--min-words 1] [--max-words 4] [--pause-probability 0.5]
        [--min-pause-ms 100] [--max-pause-ms 400] [--snr-db 20] [--words FILE] [--overwrite]
    python experiments/espeak_corpus.py --out OUT --continuous [--voices en-us,en,en-gb-scotland]
        [--max-words 10] [--comma-probability 0.3] [...]

Writes OUT/corpus/SPEAKER/UTTID.{wav,lab}, OUT/dictionary.txt, OUT/truth/SPEAKER/UTTID.TextGrid and
OUT/truth.csv (see `jaxalign.data.espeak_corpus`; --continuous speaks each utterance as one phrase and adds
OUT/pronunciations.csv, the pronunciation each word was spoken with), then prints the commands that train on it and align it;
`experiments/corpus_report.py ALIGNED OUT/truth` scores the alignments.
"""

import argparse
import json

from jaxalign.data.espeak_corpus import EspeakCorpusError, write_espeak_corpus


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (corpus/, truth/, dictionary.txt, truth.csv)")
    parser.add_argument("--speakers", type=int, default=5, help="en-us voice variants, one speaker each")
    parser.add_argument("--utterances-per-speaker", type=int, default=40)
    parser.add_argument("--min-words", type=int, default=1)
    parser.add_argument("--max-words", type=int, default=4)
    parser.add_argument("--pause-probability", type=float, default=0.5, help="chance of a silence between two words")
    parser.add_argument("--min-pause-ms", type=float, default=100)
    parser.add_argument("--max-pause-ms", type=float, default=400)
    parser.add_argument("--snr-db", type=float, default=20.0, help="white noise; >= 100 is effectively clean")
    parser.add_argument("--sample-rate", type=int, default=22050, help="espeak speaks at 22050 Hz; else resampled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--words", default=None, help="word list, one a line (default: the built-in ~950 words)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing corpus in --out")
    parser.add_argument("--continuous", action="store_true", help="each utterance one phrase (coarticulated)")
    parser.add_argument(
        "--voices", default=None, help="comma-separated espeak voices, one speaker each (replaces --speakers)"
    )
    parser.add_argument(
        "--comma-probability", type=float, default=0.3, help="--continuous: chance of a comma (a pause) between words"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    try:
        summary = write_espeak_corpus(
            args.out,
            speakers=args.speakers,
            utterances_per_speaker=args.utterances_per_speaker,
            min_words=args.min_words,
            max_words=args.max_words,
            pause_probability=args.pause_probability,
            min_pause_ms=args.min_pause_ms,
            max_pause_ms=args.max_pause_ms,
            snr_db=args.snr_db,
            sample_rate=args.sample_rate,
            seed=args.seed,
            words=args.words,
            overwrite=args.overwrite,
            continuous=args.continuous,
            voices=None if args.voices is None else [v for v in args.voices.split(",") if v],
            comma_probability=args.comma_probability,
        )
    except EspeakCorpusError as err:
        parser.error(str(err))
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(
            f"{summary['recordings']} recordings ({len(summary['speakers'])} speakers: {', '.join(summary['speakers'])}), "
            f"{summary['seconds']:.1f} s of audio at {summary['sample_rate']} Hz, {summary['words']} words, "
            f"in {summary['elapsed_seconds']:.1f} s"
        )
        print(f"  audio and transcripts: {summary['corpus']}/SPEAKER/UTTID.wav, .lab")
        print(
            f"  dictionary: {summary['dictionary']} ({summary['dictionary_words']} words, "
            f"{summary['pronunciations']} pronunciations)"
        )
        print(f"  truth: {summary['truth']}/SPEAKER/UTTID.TextGrid (tiers words, phones) and {summary['truth_csv']}")
        if "pronunciations_csv" in summary:
            share = summary["tokens_not_first"] / max(summary["ambiguous_tokens"], 1)
            print(
                f"  spoken pronunciations: {summary['pronunciations_csv']}; {summary['ambiguous_words']} words have "
                f"more than one pronunciation, {summary['ambiguous_tokens']} occurrences of them, "
                f"{summary['tokens_not_first']} ({100 * share:.1f}%) spoken otherwise than the first listed"
            )
    print("next:")
    print(f"  jaxalign-train data=corpus data.root={summary['corpus']} data.dictionary={summary['dictionary']}")
    print(f"  jaxalign-align RUN {summary['corpus']} --out aligned/")
    print(f"  python experiments/corpus_report.py aligned/ {summary['truth']}")


if __name__ == "__main__":
    main()
