"""The small espeak corpora the corpus tests share: the recordings that cannot be used (BAD, TIGHT),
those holding a word the dictionary lacks (UNKNOWN), the tiny data=corpus run trained on them (the
session fixture `trained` of tests/conftest.py), and `align`, jaxalign-align in this process."""

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile
from praatio import textgrid

from jaxalign.aligner import cli as align_cli
from jaxalign.data.espeak_corpus import write_espeak_corpus
from jaxalign.training import train
from tests.helpers import compose_config

ROOT = Path(__file__).resolve().parents[1]

# Words whose espeak phones start with no digit (test_a_dictionary_phone_that_looks_like_a_number_is_kept).
WORDS = ["station", "hello", "water", "basket", "time", "button", "garden", "piano"]


def write_audio(path, audio, rate, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio, rate, **kw)


def write_textgrid_transcript(path, words, duration, fmt):
    step = duration / (len(words) + 1)
    entries = [(step * (i + 0.5), step * (i + 1.5), w) for i, w in enumerate(words)]
    grid = textgrid.Textgrid()
    grid.addTier(textgrid.IntervalTier("transcript", entries, 0.0, duration))
    grid.save(str(path), format=fmt, includeBlankSpaces=True)


BAD = {  # recording id -> what its one reason says
    "s/no_transcript": "no transcript (no_transcript.lab, .txt or .TextGrid)",
    "s/empty": "empty transcript empty.lab",
    "s/noise": "unreadable audio noise.wav",
    "s/short": "audio too short",
    "s/latin1": "transcript latin1.lab is not UTF-8 text",
}

# Recordings holding a word the dictionary lacks (zzz: its line has no phones) -> that word: aligned
# as spoken noise under data.oov=spn (the default), left out under data.oov=skip.
UNKNOWN = {"s/oov": "zebra", "s/no_phones": "zzz"}
SKIPPED = {rid: f"words not in the dictionary: {word}" for rid, word in UNKNOWN.items()}  # data.oov=skip's reasons


TIGHT = "s/tight"


def add_bad_recordings(root, wav, words, dictionary):
    """The recordings of BAD beside the good ones of `root/s`, and a dictionary line without phones."""
    folder = root / "s"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("no_transcript", "empty", "oov", "no_phones", "latin1"):
        shutil.copy(wav, folder / f"{name}.wav")
    (folder / "empty.lab").write_text(" ... \n")
    (folder / "oov.lab").write_text(f"{words[0]} Zebra {words[-1]}\n")
    (folder / "no_phones.lab").write_text(f"{words[0]} zzz\n")
    (folder / "latin1.lab").write_bytes(b"caf\xe9 " + words[0].encode() + b"\n")
    (folder / "noise.wav").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (folder / "noise.lab").write_text(words[0])
    rate = soundfile.info(wav).samplerate
    write_audio(folder / "short.wav", soundfile.read(wav, dtype="float32")[0][: int(0.05 * rate)], rate)
    (folder / "short.lab").write_text(" ".join((words * 6)[:6]))
    with open(dictionary, "a", encoding="utf-8") as f:
        f.write("zzz\t\n")
    return len(Path(dictionary).read_text().splitlines())  # the line number of zzz


def first_pronunciations(dictionary):
    """{word: its first pronunciation} of an espeak corpus' dictionary (lines without phones skipped)."""
    first = {}
    for line in Path(dictionary).read_text(encoding="utf-8").splitlines():
        word, *phones = line.split("\t")
        if phones and phones[0].strip():
            first.setdefault(word, phones[0].split())
    return first


def align(*argv):
    """align_cli.main in this process: (exit status, stderr lines)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            align_cli.main([str(a) for a in argv])
            code = 0
        except SystemExit as exit_info:
            code = exit_info.code
    return code, err.getvalue().strip().splitlines()


def make_trained_corpus_run(out: Path) -> dict:
    """Under `out`: a corpus of 2 speakers x 6 utterances plus the recordings of BAD and TIGHT (audio long enough
    for its phones, too short for their 2 sub-states each), and a run trained on it (k = 2)."""
    write_espeak_corpus(out, speakers=2, utterances_per_speaker=6, sample_rate=16000, seed=0, words=WORDS)
    corpus, dictionary = out / "corpus", out / "dictionary.txt"
    good = sorted(p.relative_to(corpus).with_suffix("").as_posix() for p in corpus.rglob("*.wav"))
    first = first_pronunciations(dictionary)
    wav = corpus / f"{good[0]}.wav"
    add_bad_recordings(corpus, wav, wav.with_suffix(".lab").read_text().split(), dictionary)
    tight_words = sorted(first)[:6]
    phones = sum(len(first[w]) for w in tight_words)
    audio = soundfile.read(wav, dtype="float32")[0][: 400 + (phones + 4) * 160]  # phones + 5 frames
    write_audio(corpus / f"{TIGHT}.wav", audio, 16000)
    (corpus / f"{TIGHT}.lab").write_text(" ".join(tight_words))
    run_dir = out / "run"
    config = compose_config(
        {
            "setup": "order_sync", "model": "gru", "model.hidden": 16, "align.states_per_symbol": 2,
            "data": "corpus", "data.root": str(corpus), "data.dictionary": str(dictionary),
            "data.cache_dir": str(out / "cache"),
            "trainer.steps": 30, "trainer.batch_size": 8, "trainer.num_buckets": 1, "trainer.progress": False,
            "trainer.checkpoint_every": 15, "trainer.eval_every": 15, "align.warmup_steps": 10,
        }
    )  # fmt: skip
    console = io.StringIO()
    with contextlib.redirect_stderr(console):
        train(config, run_dir)
    tight_reason = f"audio too short: {phones + 5} frames for a path through {2 * phones} grid rows"
    return {"corpus": corpus, "dictionary": first, "good": good, "run": run_dir, "root": out, "tight": tight_reason,
            "source_dictionary": dictionary, "console": console.getvalue().splitlines()}  # fmt: skip


def train_cli(tmp_path, *args):
    """`python -m jaxalign.train ARGS` into tmp_path/run: the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "jaxalign.train", *args, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
