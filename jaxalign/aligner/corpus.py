"""Forced alignment of a corpus folder with a `data=corpus` run: `jaxalign-align RUN CORPUS_DIR --out DIR`.

Every recording of CORPUS_DIR (the layout of `jaxalign.data.corpus`) gets `DIR/SPEAKER/NAME.TextGrid`
with MFA's tiers `words` and `phones` (pauses are empty intervals), and a row per interval in
`DIR/alignments.csv` (recording, tier, begin, end, label, confidence, pronunciation). A word the
dictionary lists several pronunciations for is aligned with the one the Viterbi chooses among them
(parallel branches: `jaxalign.setups.alternatives`); the phones tier shows it and its word row's
`pronunciation` is its 0-based index in the dictionary's list (empty on phone rows and for unknown
words). Where the dictionary gives MFA's silence probability column (a run's dictionary.txt does:
training re-estimates it), the pause between two words is weighed by it, through the same graphs.
Unknown words (`spn`) and long recordings (banded) keep each word's first pronunciation. A recording that cannot be
aligned is named on one line and listed with its reason in `DIR/unaligned.csv`; one whose alignment
is aligned but implausible is named too and listed in `DIR/suspect.csv` (`suspicions`). The others
are still written. The dictionary is the run's (`RUN/dictionary.txt`), or `dictionary=`. Times:
`jaxalign.aligner.export` (the clock of the run's audio front end).

Confidence: the mean over an interval's frames of log p(phone | frame), the net's posterior of the
aligned phone (`Setup.symbol_log_posteriors`); a word's is that mean over all frames of its phones.
It is 0 for a perfectly confident alignment and falls towards log(1 / phones) (about -3.9 for 50
phones) where the net sees something else than the transcript says: sort by it to find bad alignments.
"""

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jaxalign.aligner import run as run_module
from jaxalign.aligner.export import Clock, Interval, csv_text, segments, write_intervals_csv, write_text, write_textgrid
from jaxalign.aligner.output_dir import OutputDir, check_out_dir
from jaxalign.aligner.run import load_run
from jaxalign.aligner.unknown import align_with_filler
from jaxalign.data.corpus import (
    SPOKEN_NOISE,
    CorpusSpec,
    has_spoken_noise,
    load_corpus,
    pronunciation_options,
    utterance_sequences,
)
from jaxalign.data.dictionary import read_dictionary_with_probabilities
from jaxalign.data.load import spec_from_config
from jaxalign.errors import CorpusError
from jaxalign.setups.alternatives import align_alternatives

CHUNK = 256  # recordings aligned and written at a time: an interruption loses at most these
# An alignment is suspect (`suspicions`) where the net hears speech in fewer frames than the
# transcript has phones, or a word's phones last longer than this on average (read speech: 50-150 ms).
MAX_SECONDS_PER_PHONE = 0.6


def tiers(positions_T, labels, words_spans, vocab, silence, log_post_TxS, duration, clock, choice=None):
    """{"words": [...], "phones": [...]} `Interval`s of one recording from its forced alignment.

    positions_T: (T,) index into `labels` (the grid target) of each frame's symbol; words_spans:
    per word the (first, last + 1) indices of its phones in `labels`; choice: per word the index of
    its aligned pronunciation in the dictionary's list (None: an unknown word), kept on its interval."""
    num_frames = len(positions_T)

    def seconds(frame):
        return clock.boundary(frame, num_frames, duration)

    phones, frames_of = [], {}
    for a, b, index in segments(positions_T):
        frames_of[index] = (a, b)
        name = vocab[int(labels[index])]
        if name == silence:
            continue
        conf = float(np.mean(log_post_TxS[a:b, labels[index]]))
        phones.append(Interval(seconds(a), seconds(b), name, conf))
    words = []
    for n, (word, (first, last)) in enumerate(words_spans):
        a, b = frames_of[first][0], frames_of[last - 1][1]
        conf = float(np.mean(log_post_TxS[np.arange(a, b), labels[positions_T[a:b]]]))
        words.append(Interval(seconds(a), seconds(b), word, conf, None if choice is None else choice[n]))
    return {"words": words, "phones": phones}


def word_spans(utterance, pronunciations=None) -> list[tuple[str, tuple[int, int]]]:
    """(word, (first, last + 1) index of its phones in `Utterance.target`) per word; with
    `pronunciations` (per word its phones) those instead of the utterance's own."""
    spans, at = [], 1  # after the leading silence
    for word, phones in zip(utterance.words, pronunciations or utterance.pronunciations):
        spans.append((word, (at, at + len(phones))))
        at += len(phones) + 1
    return spans


def branch_weights(words, options, probabilities) -> list[list[float]]:
    """Per word, the log of each option's pronunciation probability (MFA's column; 0 without one)."""
    return [
        [float(np.log(probabilities[w][n])) if w in probabilities and n is not None else 0.0 for n, _ in o]
        for w, o in zip(words, options)
    ]


def branch_pauses(words, options, pause_after) -> list[list[float | None]]:
    """Per word, the probability of a pause after each option (MFA's silence probability column;
    None without one)."""
    return [
        [pause_after[w][n] if w in pause_after and n is not None else None for n, _ in o]
        for w, o in zip(words, options)
    ]


def is_long(run, labels_L, num_frames: int) -> bool:
    """Whether `Run.outputs` aligns this recording in a band (`jaxalign.aligner.run.LONG_FRAMES`)."""
    rows = run.setup.frames_needed(labels_L)
    return num_frames > run_module.LONG_FRAMES or num_frames * rows > run_module.LONG_GRID_CELLS


def suspicions(tiers_of_one: dict, log_post_TxS, silence_id: int) -> list[str]:
    """Why one aligned recording looks wrong (empty: it does not). Two rules, both cheap and free of
    tuning to a corpus: the net hears speech (a most likely symbol other than the pause) in fewer
    frames than the transcript has phones, so there is nothing to align the words to (a silent or
    wrong file); or a word's phones last over `MAX_SECONDS_PER_PHONE` on average, far beyond any
    speaking rate (a word stretched over a pause or noise the transcript does not mention); an
    unknown word aligned as one `spn` interval counts its letters as its phones."""
    reasons = []
    phones = len(tiers_of_one["phones"])
    speech = int(np.sum(np.argmax(log_post_TxS, axis=1) != silence_id))
    if speech < phones:
        reasons.append(f"no speech heard: {speech} frames sound like speech for {phones} phones")
    per_word = {}
    for iv in tiers_of_one["phones"]:
        for w in tiers_of_one["words"]:
            if w.begin <= iv.begin < w.end:
                per_word.setdefault((w.begin, w.end, w.label), []).append(iv)
    for (begin, end, word), ivs in per_word.items():
        if [iv.label for iv in ivs] == [SPOKEN_NOISE]:  # an unknown word (data.oov=spn): its letters stand in
            if (end - begin) / max(len(word), 1) > MAX_SECONDS_PER_PHONE:
                reasons.append(
                    f"word {word!r} lasts {end - begin:.2f} s for {len(word)} letters, aligned as {SPOKEN_NOISE} "
                    f"({begin:.2f}-{end:.2f} s)"
                )
        elif (end - begin) / len(ivs) > MAX_SECONDS_PER_PHONE:
            reasons.append(f"word {word!r} lasts {end - begin:.2f} s for {len(ivs)} phones ({begin:.2f}-{end:.2f} s)")
    return reasons


def dictionary_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def as_rows(tiers_: dict[str, list[Interval]]) -> dict[str, list[list]]:
    """Tiers as JSON-ready rows (begin, end, label, confidence), for the progress log."""
    return {
        tier: [
            [float(iv.begin), float(iv.end), iv.label, None if iv.confidence is None else float(iv.confidence)]
            + ([] if iv.pronunciation is None else [int(iv.pronunciation)])
            for iv in ivs
        ]
        for tier, ivs in tiers_.items()
    }


def check_out_beside_corpus(corpus_dir, out_dir) -> None:
    """Refuses an --out inside the corpus (its TextGrids would be read as transcripts) or holding it."""
    out, corpus = Path(out_dir).resolve(), Path(corpus_dir).resolve()
    if out == corpus or corpus in out.parents:
        raise CorpusError(
            f"--out {out_dir} is inside the corpus {corpus_dir}: its TextGrids would be read as transcripts"
        )
    if out in corpus.parents:
        raise CorpusError(f"--out {out_dir} holds the corpus {corpus_dir}: choose a folder beside it")


def align_corpus(run, corpus_dir, out_dir, *, dictionary=None, overwrite=False, resume=False, say=print) -> dict:
    """Aligns every recording of `corpus_dir` with the loaded `run` (`jaxalign.load_run` of a
    data=corpus run) into `out_dir` (its rules: `jaxalign.aligner.output_dir`; `resume` skips the
    recordings an interrupted call with the same run, step and dictionary wrote). Returns a
    summary: recordings, aligned, unaligned, suspect, audio_seconds, seconds (wall, this call),
    real_time_factor."""
    tic = time.perf_counter()
    data_cfg = run.config.data
    if data_cfg.name != "corpus":
        raise CorpusError(
            f"{run.run_dir} was trained on data={data_cfg.name}; aligning a corpus folder needs a data=corpus run "
            "(its phones and its silence)"
        )
    check_out_beside_corpus(corpus_dir, out_dir)
    spec = dataclasses.replace(spec_from_config(CorpusSpec, data_cfg), root=str(corpus_dir))
    clock = run.clock or Clock.of_front_end(spec)
    dictionary_path = Path(dictionary) if dictionary else run.run_dir / "dictionary.txt"
    entries, probabilities, pause_after, warnings = read_dictionary_with_probabilities(dictionary_path, spec.silence)
    for line in warnings:
        say(f"warning: {line}")
    state = {"run": str(run.run_dir.resolve()), "step": run.step, "dictionary": dictionary_digest(dictionary_path)}
    with OutputDir.open(out_dir, state=state, overwrite=overwrite, resume=resume) as out:
        corpus_data = load_corpus(spec, dictionary=entries, phones=run.vocab, say=say)
        unaligned = list(corpus_data.unaligned)
        done = out.done()
        earlier = {e["recording"]: e for e in out.recorded() if f"{e['recording']}.TextGrid" in done}
        tiers_of = {
            rid: {tier: [Interval(*iv) for iv in ivs] for tier, ivs in e["tiers"].items()} for rid, e in earlier.items()
        }
        suspect = [(rid, why) for rid, e in earlier.items() for why in e["suspect"]]
        utterances = [u for u in corpus_data.utterances if u.recording.id not in earlier]
        if earlier:
            say(f"--resume: {len(earlier)} recordings were aligned by an earlier call")
        data = utterance_sequences(utterances, run.vocab, spec.silence)
        feasible = run.feasible(data.frame_lengths(), data.labels)
        for u, y, ok in zip(utterances, data.labels, feasible):
            if not ok:
                reason = f"audio too short: {len(u.features)} frames for a path through {run.setup.frames_needed(y)} grid rows"
                unaligned.append((u.recording.id, reason))
                say(f"unaligned {u.recording.id}: {reason}")
        keep = [i for i in range(len(utterances)) if feasible[i]]
        options = [pronunciation_options(u, corpus_data.dictionary, entries, run.vocab) for u in utterances]
        silence_id = run.vocab.index(spec.silence)
        vocab = [*run.vocab, SPOKEN_NOISE] if SPOKEN_NOISE not in run.vocab else run.vocab
        short = {i for i in keep if not is_long(run, data.labels[i], len(data.features[i]))}  # not banded
        shapes = (
            run.batch_shapes([len(data.features[i]) for i in short], [len(data.labels[i]) for i in short])
            if short
            else None
        )
        with tqdm(total=len(keep), desc="jaxalign-align", unit="file", mininterval=1.0, disable=not keep) as bar:
            for start in range(0, len(keep), CHUNK):
                part = keep[start : start + CHUNK]
                noisy = {i for i in part if has_spoken_noise(utterances[i]) and SPOKEN_NOISE not in run.vocab}
                # A target with spn is aligned on the net's log-probs with the filler's columns added.
                outs = run.outputs(
                    [data.features[i] for i in part], [data.labels[i][:1] if i in noisy else data.labels[i] for i in part],
                    shapes,  # the corpus's buckets in every chunk: the net compiles once per bucket
                )  # fmt: skip
                branching = [i for i in part if i not in noisy and i in short]
                branching = [i for i in branching if any(len(w) > 1 for w in options[i])
                             or any(w in pause_after for w in utterances[i].words)]  # fmt: skip
                chosen = dict(zip(branching, align_alternatives(
                    run.setup, [outs[part.index(i)]["log_probs"] for i in branching],
                    [[[ids for _, ids in w] for w in options[i]] for i in branching], silence_id,
                    weights=[branch_weights(utterances[i].words, options[i], probabilities) for i in branching],
                    pause_after=[branch_pauses(utterances[i].words, options[i], pause_after) for i in branching],
                )))  # fmt: skip
                for i, result in zip(part, outs):
                    u = utterances[i]
                    labels, spans = data.labels[i], word_spans(u)
                    choice = [None if w[0][0] is None else w[0][0] for w in options[i]]
                    if i in noisy:
                        positions, log_post = align_with_filler(run.setup, result["log_probs"], labels, silence_id)
                    elif chosen.get(i) is not None:
                        found_path = chosen[i]
                        labels, positions = found_path.labels, found_path.positions
                        choice = [options[i][n][j][0] for n, j in enumerate(found_path.choice)]
                        spans = word_spans(u, [options[i][n][j][1] for n, j in enumerate(found_path.choice)])
                        log_post = run.setup.symbol_log_posteriors(result["log_probs"])
                    else:
                        positions, log_post = result["positions"], run.setup.symbol_log_posteriors(result["log_probs"])
                    found = tiers(positions, labels, spans, vocab, spec.silence, log_post, u.duration, clock, choice)
                    out.write(f"{u.recording.id}.TextGrid", write_textgrid, found, round(u.duration, 4))
                    tiers_of[u.recording.id] = found
                    reasons = suspicions(found, log_post, silence_id)
                    for reason in reasons:
                        suspect.append((u.recording.id, reason))
                        say(f"suspect {u.recording.id}: {reason}")
                    out.record({"recording": u.recording.id, "tiers": as_rows(found), "suspect": reasons})
                bar.update(len(part))
        out.write("alignments.csv", write_intervals_csv, tiers_of, True)
        out.write("suspect.csv", write_text, csv_text(["recording", "reason"], sorted(suspect)))
        out.write("unaligned.csv", write_text, csv_text(["recording", "reason"], sorted(unaligned)))
        out.finish()
    seconds = time.perf_counter() - tic
    audio = sum(utterances[i].duration for i in keep)
    return {
        "recordings": len(tiers_of) + len(unaligned),
        "aligned": len(tiers_of),
        "unaligned": len(unaligned),
        "suspect": len({rid for rid, _ in suspect}),
        "audio_seconds": audio,
        "seconds": seconds,
        "real_time_factor": audio / seconds if seconds > 0 else float("inf"),
    }


def align_corpus_dir(
    run_dir, corpus_dir, out_dir, *, dictionary=None, step=None, overwrite=False, resume=False, say=print
) -> dict:
    """`jaxalign-align RUN CORPUS_DIR --out DIR`: loads the run, aligns the corpus (`align_corpus`)
    and says what it did; a corpus of which no recording could be aligned is a CorpusError."""
    check_out_dir(Path(out_dir), overwrite, resume)
    check_out_beside_corpus(corpus_dir, out_dir)
    run = load_run(run_dir, step=step)
    run.require_alignments()
    say(f"{run_dir}: setup={run.config.setup.name}, checkpoint step {run.step}; aligning the corpus {corpus_dir}")
    report = align_corpus(run, corpus_dir, out_dir, dictionary=dictionary, overwrite=overwrite, resume=resume, say=say)
    if not report["aligned"]:
        raise CorpusError(
            f"none of the {report['recordings']} recordings of {corpus_dir} could be aligned; "
            f"the reasons are in {Path(out_dir) / 'unaligned.csv'}"
        )
    notes = [f"{report['unaligned']} unaligned, listed in unaligned.csv"] if report["unaligned"] else []
    notes += [f"{report['suspect']} suspect, listed in suspect.csv"] if report["suspect"] else []
    say(
        f"aligned {report['aligned']} of {report['recordings']} recordings ({report['audio_seconds']:.1f} s of audio) "
        f"in {report['seconds']:.1f} s, {report['real_time_factor']:.0f}x real time -> {out_dir}/ "
        f"(SPEAKER/NAME.TextGrid, alignments.csv" + "".join(f"; {n}" for n in notes) + ")"
    )
    return report
