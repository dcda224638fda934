"""Forced alignment of a corpus folder with a `data=corpus` run: `jaxalign-align RUN CORPUS_DIR --out DIR`.

Every recording of CORPUS_DIR (the layout of `jaxalign.data.corpus`) gets `DIR/SPEAKER/NAME.TextGrid`
with MFA's tiers `words` and `phones` (pauses are empty intervals), and a row per interval in
`DIR/alignments.csv` (recording, tier, begin, end, label, confidence). A recording that cannot be
aligned is named on one line and listed with its reason in `DIR/unaligned.csv`; the others are
still written. The dictionary is the run's (`RUN/dictionary.txt`), or `dictionary=`.

Times: frame t is the window starting at t * hop, so the boundary between frames t - 1 and t is
placed halfway between their centres, t * hop + (frame - hop) / 2 (7.5 ms after t * hop with 25 ms
windows every 10 ms); the first interval starts at 0 and the last ends at the end of the audio.

Confidence: the mean over an interval's frames of log p(phone | frame), the net's posterior of the
aligned phone (its sub-states summed); a word's is that mean over all frames of its phones. It is
0 for a perfectly confident alignment and falls towards log(1 / phones) (about -3.9 for 50 phones)
where the net sees something else than the transcript says: sort by it to find bad alignments.
"""

import csv
import dataclasses
import time
from pathlib import Path

import numpy as np

from jaxalign.data.corpus import CorpusError, CorpusSpec, load_corpus, read_dictionary, to_sequences, unaligned_csv
from jaxalign.data.load import spec_from_config

OUTPUTS = ("alignments.csv", "unaligned.csv")  # besides the TextGrids, what --overwrite clears


@dataclasses.dataclass
class Interval:
    begin: float
    end: float
    label: str
    confidence: float


def boundary_time(frame: int, spec) -> float:
    """Seconds of the boundary before frame `frame` (module docstring)."""
    return frame * spec.hop_ms / 1000 + (spec.frame_ms - spec.hop_ms) / 2000


def symbol_log_posteriors(log_probs_TxC: np.ndarray, num_symbols: int, k: int) -> np.ndarray:
    """(T, num_symbols) log p(symbol | frame): sub-state columns summed, renormalised over symbols."""
    lp = np.asarray(log_probs_TxC, np.float64)[:, : num_symbols * k].reshape(len(log_probs_TxC), num_symbols, k)
    per_symbol = np.logaddexp.reduce(lp, axis=2)
    return per_symbol - np.logaddexp.reduce(per_symbol, axis=1, keepdims=True)


def tiers(positions_T, labels, words_spans, vocab, silence, log_post_TxS, duration, spec):
    """Word and phone `Interval`s of one recording from its forced alignment.

    positions_T: (T,) index into `labels` (the grid target) of each frame's symbol; words_spans:
    per word the (first, last + 1) indices of its phones in `labels`."""
    num_frames = len(positions_T)
    change = np.flatnonzero(np.diff(positions_T, prepend=-2) != 0)
    ends = np.append(change[1:], num_frames)

    def seconds(frame):
        if frame <= 0:
            return 0.0
        if frame >= num_frames:
            return round(duration, 4)
        return round(min(boundary_time(frame, spec), duration), 4)

    phones, frames_of = [], {}
    for a, b in zip(change, ends):
        index = int(positions_T[a])
        frames_of[index] = (a, b)
        name = vocab[int(labels[index])]
        if name == silence:
            continue
        conf = float(np.mean(log_post_TxS[a:b, labels[index]]))
        phones.append(Interval(seconds(a), seconds(b), name, conf))
    words = []
    for word, (first, last) in words_spans:
        a, b = frames_of[first][0], frames_of[last - 1][1]
        conf = float(np.mean(log_post_TxS[np.arange(a, b), labels[positions_T[a:b]]]))
        words.append(Interval(seconds(a), seconds(b), word, conf))
    return words, phones


def word_spans(utterance) -> list[tuple[str, tuple[int, int]]]:
    """(word, (first, last + 1) index of its phones in `Utterance.target`) per word."""
    spans, at = [], 1  # after the leading silence
    for word, phones in zip(utterance.words, utterance.pronunciations):
        spans.append((word, (at, at + len(phones))))
        at += len(phones) + 1
    return spans


def write_textgrid(path: Path, words, phones, duration: float) -> None:
    from praatio import textgrid

    grid = textgrid.Textgrid()
    for name, entries in (("words", words), ("phones", phones)):
        grid.addTier(textgrid.IntervalTier(name, [(iv.begin, iv.end, iv.label) for iv in entries], 0.0, duration))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


def align_corpus(run, corpus_dir, out_dir, *, dictionary=None, say=print) -> dict:
    """Aligns every recording of `corpus_dir` with the loaded `run` (`jaxalign.load_run` of a
    data=corpus run) into `out_dir` (checked and cleared by the caller). Returns a summary:
    recordings, aligned, unaligned, audio_seconds, seconds (wall, this call), real_time_factor."""
    tic = time.perf_counter()
    data_cfg = run.config.data
    if data_cfg.name != "corpus" or run.optional_symbol is None:
        raise CorpusError(
            f"{run.run_dir} was trained on data={data_cfg.name}; aligning a corpus folder needs a data=corpus run "
            "(its phones and its silence)"
        )
    spec = dataclasses.replace(spec_from_config(CorpusSpec, data_cfg), root=str(corpus_dir))
    dictionary_path = Path(dictionary) if dictionary else run.run_dir / "dictionary.txt"
    entries, warnings = read_dictionary(dictionary_path, spec.silence)
    for line in warnings:
        say(f"warning: {line}")
    corpus = load_corpus(spec, dictionary=entries, phones=run.vocab, say=say)
    unaligned = list(corpus.unaligned)
    utterances = corpus.utterances
    data = to_sequences(utterances, run.vocab, spec.silence)
    feasible = run.feasible(data.frame_lengths(), data.labels)
    k = run.setup.states_per_symbol
    for u, y, ok in zip(utterances, data.labels, feasible):
        if not ok:
            needed = (len(y) - int(np.sum(y == run.optional_symbol))) * k
            reason = f"audio too short: {len(u.features)} frames for {needed} grid rows ({k} per phone)"
            unaligned.append((u.recording.id, reason))
            say(f"unaligned {u.recording.id}: {reason}")
    keep = [i for i in range(len(utterances)) if feasible[i]]
    outs = run.outputs([data.features[i] for i in keep], [data.labels[i] for i in keep]) if keep else []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, out in zip(keep, outs):
        u = utterances[i]
        log_post = symbol_log_posteriors(out["log_probs"], run.num_classes, k)
        words, phones = tiers(
            out["positions"], data.labels[i], word_spans(u), run.vocab, spec.silence, log_post, u.duration, spec
        )
        write_textgrid(out_dir / f"{u.recording.id}.TextGrid", words, phones, round(u.duration, 4))
        for tier, entries in (("words", words), ("phones", phones)):
            rows += [[u.recording.id, tier, f"{iv.begin:.4f}", f"{iv.end:.4f}", iv.label, f"{iv.confidence:.4f}"]
                     for iv in entries]  # fmt: skip
    with open(out_dir / "alignments.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["recording", "tier", "begin", "end", "label", "confidence"])
        writer.writerows(rows)
    unaligned.sort()
    (out_dir / "unaligned.csv").write_text(unaligned_csv(unaligned), encoding="utf-8")
    seconds = time.perf_counter() - tic
    audio = sum(utterances[i].duration for i in keep)
    return {
        "recordings": len(keep) + len(unaligned),
        "aligned": len(keep),
        "unaligned": len(unaligned),
        "audio_seconds": audio,
        "seconds": seconds,
        "real_time_factor": audio / seconds if seconds > 0 else float("inf"),
    }
