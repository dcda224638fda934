"""How far one recording moves the word boundaries of the others, through feature normalisation.

    python experiments/normalise_shift.py OUT RUN_DIR [RUN_DIR ...] [--speaker en-us] [--json PATH]

OUT is an `espeak_corpus.py` output (corpus/, truth/). For each run (a data=corpus run trained on
OUT/corpus; its `data.normalise` is what is measured) the corpus is aligned three times: as it is,
with one recording of --speaker made 4x louder (clipped), and with a silent recording (2 s of
digital silence with a one-word transcript) added to --speaker. Printed per run and perturbation:
the largest and mean shift (ms) of the word boundaries of the untouched recordings of that speaker
against the unperturbed alignment, and the share of word boundaries within 20 ms of the truth
(`corpus_report.py`) over the untouched recordings.
"""

import argparse
import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_report import read_tiers, report  # noqa: E402

from jaxalign.aligner.corpus import align_corpus_dir  # noqa: E402


def perturbed(out: Path, work: Path, speaker: str) -> dict[str, tuple[Path, str | None]]:
    """{name: (corpus folder, the recording id changed or added)}."""
    base = out / "corpus"
    corpora = {"as_is": (base, None)}
    wavs = sorted((base / speaker).glob("*.wav"))
    loud = work / "loud"
    if not loud.exists():
        shutil.copytree(base, loud)
        audio, rate = soundfile.read(wavs[0], dtype="float32")
        soundfile.write(loud / speaker / wavs[0].name, np.clip(4 * audio, -1, 32767 / 32768), rate, subtype="PCM_16")
    corpora["louder_4x"] = (loud, f"{speaker}/{wavs[0].stem}")
    silent = work / "silent"
    if not silent.exists():
        shutil.copytree(base, silent)
        rate = soundfile.info(wavs[0]).samplerate
        soundfile.write(silent / speaker / "silent.wav", np.zeros(2 * rate, np.float32), rate, subtype="PCM_16")
        word = (base / speaker / f"{wavs[0].stem}.lab").read_text().split()[0]
        (silent / speaker / "silent.lab").write_text(word + "\n")
    corpora["silent_added"] = (silent, f"{speaker}/silent")
    return corpora


def word_boundaries(aligned: Path, ids: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for rid in ids:
        words = read_tiers(aligned / f"{rid}.TextGrid", ["words"], ())["words"]
        out[rid] = np.array([t for b, e, _ in words for t in (b, e)])
    return out


def measure(out: Path, runs: list[Path], speaker: str, work: Path) -> list[dict]:
    corpora = perturbed(out, work, speaker)
    untouched = sorted(
        p.relative_to(out / "corpus").with_suffix("").as_posix() for p in (out / "corpus" / speaker).glob("*.wav")
    )
    rows = []
    for run in runs:
        aligned = {}
        for name, (corpus, changed) in corpora.items():
            dest = work / f"{run.name}-{name}"
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                align_corpus_dir(run, corpus, dest, overwrite=True, say=lambda line: None)
            aligned[name] = (dest, changed)
        ids = [rid for rid in untouched if rid != corpora["louder_4x"][1]]
        base = word_boundaries(aligned["as_is"][0], ids)
        truth_dir = work / "truth_untouched"
        if not truth_dir.exists():
            for rid in ids:
                (truth_dir / rid).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(out / "truth" / f"{rid}.TextGrid", truth_dir / f"{rid}.TextGrid")
        for name, (dest, _) in aligned.items():
            moved = word_boundaries(dest, ids)
            shifts = np.concatenate([np.abs(moved[r] - base[r]) for r in ids]) * 1000
            acc = report(dest, truth_dir, tiers=("words",), ignore=("sil", "sp", "_"))["tiers"]["words"]
            rows.append({
                "run": run.name, "perturbation": name, "max_shift_ms": round(float(shifts.max()), 1),
                "mean_shift_ms": round(float(shifts.mean()), 2),
                "words_within_20ms": round(100 * acc["within_tolerance"], 1), "recordings": len(ids),
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="an espeak_corpus.py output folder (corpus/, truth/)")
    parser.add_argument("runs", nargs="+", help="data=corpus run dirs trained on OUT/corpus")
    parser.add_argument("--speaker", default="en-us")
    parser.add_argument("--work", default=None, help="scratch folder (default OUT/normalise_shift)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    out = Path(args.out)
    work = Path(args.work) if args.work else out / "normalise_shift"
    rows = measure(out, [Path(r) for r in args.runs], args.speaker, work)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
