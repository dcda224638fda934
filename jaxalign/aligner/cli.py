"""`jaxalign-align RUN_DIR CORPUS_DIR --out DIR [--dictionary FILE] [--resume]` (a corpus folder:
`jaxalign.aligner.corpus`) and `jaxalign-align RUN_DIR DATA.npz --out DIR [--format npz,ctm,textgrid]
[--frame-shift S] [--evaluate]` (`.npz` sequences: `jaxalign.aligner.sequences`).

This module parses the command line and reports; the work is in those two modules. Any
`JaxalignError` (bad input, a busy or unwritable --out, a run still training) ends with one line
and exit status 1 (`JAXALIGN_FULL_ERROR=1` shows the traceback).
"""

import argparse
import math
import os
import sys
from pathlib import Path

FORMATS = ("npz", "ctm", "textgrid")


def say(message: str) -> None:
    print(f"jaxalign-align: {message}", file=sys.stderr, flush=True)


def parse_formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(
            f"unknown format {unknown[0] if unknown else text!r}; choose from {','.join(FORMATS)}"
        )
    return formats


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="jaxalign-align",
        description="Force-align a corpus folder (audio + word transcripts, MFA's layout) with a data=corpus run, "
        "or every sequence of a bring-your-own .npz file (labels required) with a setup=order_sync or setup=seq2seq "
        "run (its config and latest checkpoint).",
    )
    parser.add_argument("run_dir", help="a jaxalign-train run directory (.hydra/config.yaml and checkpoints/)")
    parser.add_argument(
        "data",
        help="a corpus folder (SPEAKER/NAME.wav with NAME.lab, .txt or .TextGrid) for a data=corpus run, or the .npz "
        "file (features, feature_lengths, labels, label_lengths; optional alignments, vocab)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty --out, deleting what earlier calls wrote there first (other files stay)",
    )
    corpus = parser.add_argument_group("corpus folders")
    corpus.add_argument(
        "--dictionary", default=None, help="the pronunciation dictionary (default: RUN_DIR/dictionary.txt)"
    )
    corpus.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted call into --out (same run, step and dictionary): recordings already written are kept",
    )
    npz = parser.add_argument_group(".npz files")
    npz.add_argument(
        "--format",
        type=parse_formats,
        default=FORMATS,
        help="comma-separated subset of npz,ctm,textgrid (default: all)",
    )
    npz.add_argument(
        "--frame-shift",
        type=float,
        default=None,
        help="seconds per frame for CTM and TextGrid times (default: the run's audio front end, else 0.01)",
    )
    npz.add_argument(
        "--evaluate",
        action="store_true",
        help="print alignment accuracy, boundary error and label error rate against the file's true alignments",
    )
    args = parser.parse_args(argv)
    if args.frame_shift is not None and not (math.isfinite(args.frame_shift) and args.frame_shift > 0):
        parser.error(f"--frame-shift must be a finite number of seconds > 0, got {args.frame_shift}")
    return args


def main(argv=None) -> None:
    """The console entry point `jaxalign-align`."""
    args = parse_args(argv)
    from jaxalign.errors import JaxalignError, RunError
    from jaxalign.runtime import configure_jax

    configure_jax()
    try:
        if not Path(args.data).exists():
            raise RunError(f"no such file or folder {args.data} (expected a corpus folder or an .npz file)")
        if Path(args.data).is_dir():
            from jaxalign.aligner.corpus import align_corpus_dir

            align_corpus_dir(
                args.run_dir,
                args.data,
                args.out,
                dictionary=args.dictionary,
                step=args.step,
                overwrite=args.overwrite,
                resume=args.resume,
                say=say,
            )
        else:
            from jaxalign.aligner.sequences import align_file

            if args.resume:
                raise SystemExit("jaxalign-align: --resume is for corpus folders; an .npz file is aligned in one go")
            align_file(
                args.run_dir,
                args.data,
                args.out,
                formats=args.format,
                frame_shift=args.frame_shift,
                evaluate=args.evaluate,
                step=args.step,
                overwrite=args.overwrite,
                say=say,
            )
    except (JaxalignError, FileNotFoundError) as err:
        if os.environ.get("JAXALIGN_FULL_ERROR") == "1":
            raise
        say(f"error: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
