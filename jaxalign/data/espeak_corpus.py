"""A synthetic forced-alignment corpus in the Montreal Forced Aligner layout, with the true intervals.

`write_espeak_corpus(OUT)` speaks short word sequences with espeak-ng and writes
- `OUT/corpus/SPEAKER/UTTID.wav` (16-bit PCM) and `UTTID.lab` (the words, lower case, one line),
- `OUT/dictionary.txt`: MFA's `word<TAB>ph ph ph` lines, sorted by word,
- `OUT/truth/SPEAKER/UTTID.TextGrid` (tiers `words` and `phones`) and `OUT/truth.csv`
  (`recording,tier,begin,end,label`, seconds, non-empty intervals only): where every word and phone
  really is, by construction.
Conventions:
- Speakers are en-us voice variants (`en-us`, `en-us+m3`, `en-us+f2`, ...): a variant changes the voice
  (formants, pitch range, breathiness), not espeak's pronunciation rules, so one dictionary serves every
  speaker. A speaker's folder is its voice with `+` written `_` (`en-us_m3`), utterances `en-us_m3_0007`.
- Every word is synthesised on its own, at the utterance's rate and pitch, and trimmed to its own speech:
  from its first non-pause phoneme event to the start of its closing pause event. espeak adds a lead-in
  (9-15 ms, 46 ms with the closure of an initial stop) and a closing pause; they are digital silence
  except with the breathy variants (f2, f4), whose breath noise, some 20 dB below the speech, runs through
  them and past the last event, so those voices' words start and stop abruptly here. The utterance is
  the words in a row, with a silence gap drawn between two words with `pause_probability` (else they
  abut), silence padding at both ends and white noise at `snr_db` (relative to the words' power) over the
  whole file. One call per word gives every word an exact span and leaves the pauses to the corpus rather
  than to espeak's phrasing (the binding reports phoneme events only); the .lab files carry no pause marks.
- Phones are espeak's mnemonics through `spoken_words.phone_name` (stress marks dropped). A phone interval
  is an event's span (`spoken_words.segments`: an event marks where its phoneme starts, the word's last
  phone runs to where its audio was trimmed); zero-length events are dropped, so a phone espeak folds
  into its neighbour (the `l` of "all", "film", "already": 56 of the 951 built-in words) has no interval and is not in the dictionary
  either. A word interval runs from its first phone's start to its last phone's end. Silence (padding,
  gaps) is an empty interval. A word's pronunciation is its phones as synthesised; if they differ between
  syntheses, every distinct one gets a line, the most frequent first.
- Deterministic given `seed`, except for the little state espeak-ng carries from call to call (see
  `spoken_words`), which can move a word's last boundary by a few samples.

Continuous mode (`continuous=True`): each utterance is one espeak call on the whole phrase, so words are
coarticulated and pause only where espeak's phrasing makes them, here at commas.
- A pool of `utterances_per_speaker` sentences (`sentence_pool`: min_words..max_words words drawn from the
  list, a comma after each word but the last with `comma_probability`) is spoken by every speaker:
  sentence u is each speaker's utterance u, at that speaker-utterance's own rate and pitch. Speakers are
  `voices`, which may mix dialects: `en-us`, `en` (British), `en-gb-scotland`, `en-gb-x-rp`, `en-029`,
  `en-us-nyc`, ... (espeak-ng's names; there is no `en-gb` or `en-sc`). The .lab holds the words without
  the commas.
- Times come from espeak's events (`speak_phrase`): a phone runs from its event to the next event, pauses
  included; it belongs to the word its event's text position falls in, pauses to none. A word runs from
  its first phone's start to its last phone's end, so two abutting words meet at the next word's first
  phone event, and a pause between words is an empty interval in both tiers. The audio is cut from the
  first phone's start to the last phone's end, then padded and noised as above (SNR over the words).
- The dictionary lists every distinct pronunciation of a word: first the citation forms, each word spoken
  alone (`speak_word` at rate 175, pitch 50) by `en-us` (always first, even when `en-us` is not a
  speaker), then by each voice in order; then the pronunciations heard in the phrases that are not among
  them, most frequent first (so the spoken one is always listed). A citation form can differ from the
  same voice's phrase form: word-final `l` after a vowel is a zero-length event alone ("bowl": `b oU`) and
  a short phone before the next word (`b oU l`).
- `OUT/pronunciations.csv` (`recording,index,word,pronunciation`, index 0-based into the .lab's words) holds
  each word occurrence's phones as spoken, the same as the phones tier inside its word; `OUT/conditions.csv`
  each recording's voice, rate, pitch and SNR.
- `write_phrases` does this for any sentence pool and any `render` of the padded clean audio into the
  recording: `jaxalign.data.robust_corpus` writes its noisier corpus through it.
"""

import collections
import csv
import functools
import math
import shutil
import time
from pathlib import Path

import numpy as np

from jaxalign.data.espeak import EspeakError, get_espeak
from jaxalign.data.spoken_words import SILENCE, SpokenWordsSpec, phone_name, read_words, segments
from jaxalign.data.textgrid import write_textgrid
from jaxalign.errors import EspeakCorpusError

VOICES = (
    "en-us",
    "en-us+m3",
    "en-us+f2",
    "en-us+m1",
    "en-us+f4",
    "en-us+m2",
    "en-us+f1",
    "en-us+m4",
    "en-us+f3",
    "en-us+m5",
    "en-us+f5",
    "en-us+m6",
    "en-us+m7",
)
RATES = (130, 250)  # words per minute, drawn uniformly per utterance
PITCHES = (30, 70)  # base pitch 0..100, drawn uniformly per utterance
PAD_MS = (50.0, 200.0)  # silence before the first and after the last word, drawn uniformly
TIERS = ("words", "phones")


def speaker_name(voice: str) -> str:
    """The speaker's folder: the voice with `+` written `_` (`en-us+m3` -> `en-us_m3`)."""
    return voice.replace("+", "_")


def speak_word(word: str, rate: int, pitch: int) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """One word with the current voice, trimmed to its speech: (int16 audio at espeak's rate, phones as
    (start, end, name) samples into that audio, in order, no pauses, nothing of zero length)."""
    pcm, events = get_espeak().synth(word, rate=rate, pitch=pitch)
    names = [phone_name(m) for _, m in events]
    spoken = [i for i, name in enumerate(names) if name != SILENCE]
    if not spoken:
        raise EspeakCorpusError(f"espeak-ng produced no phonemes for the word {word!r}")
    first, last = spoken[0], spoken[-1]
    closing = next((i for i in range(last + 1, len(events)) if names[i] == SILENCE), None)
    begin = events[first][0]
    end = events[closing][0] if closing is not None else len(pcm)
    starts, phones = segments([(s - begin, m) for s, m in events[first : last + 1]], end - begin)
    bounds = list(starts) + [end - begin]
    spans = [(int(a), int(b), p) for a, b, p in zip(bounds, bounds[1:], phones) if p != SILENCE]
    if not spans:
        raise EspeakCorpusError(f"espeak-ng produced no audio for the word {word!r}")
    return pcm[begin:end], spans


def phrase_text(words: list[str], commas: list[bool]) -> tuple[str, list[int]]:
    """The text espeak speaks: the words with ", " after word k where `commas[k]`, else " ", and each
    word's 1-based character position in it (espeak's `text_position`)."""
    text, starts = "", []
    for k, word in enumerate(words):
        starts.append(len(text) + 1)
        text += word + ("" if k == len(words) - 1 else ", " if commas[k] else " ")
    return text, starts


def speak_phrase(
    words: list[str], commas: list[bool], rate: int, pitch: int
) -> tuple[np.ndarray, list[tuple[int, int, str]], list[list[tuple[int, int, str]]]]:
    """One utterance in one espeak call with the current voice, trimmed to its speech.

    Returns (int16 audio at espeak's rate, phones as (start, end, name) samples into that audio in order,
    and per word its phones, the same tuples). A phone runs from its event to the next event (pauses
    included); zero-length phones are dropped and equal neighbours within a word merge, as in
    `spoken_words.segments`. A phone belongs to the word its event's text position falls in; pauses belong
    to no word. The audio runs from the first phone's start to the last phone's end (espeak's lead-in and
    closing pause cut off); pauses inside it (commas, espeak's phrasing) stay, in no phone.
    """
    text, starts = phrase_text(words, commas)
    pcm, events = get_espeak().synth_events(text, rate=rate, pitch=pitch)
    heard = [e.text_position for e in events if e.kind == "word"]
    if heard != starts:
        raise EspeakCorpusError(
            f"espeak-ng split or joined the words of {text!r}: word events at characters {heard}, expected {starts}"
        )
    phonemes = [e for e in events if e.kind == "phoneme"]
    ends = [e.sample for e in phonemes[1:]] + [len(pcm)]
    per_word: list[list[tuple[int, int, str]]] = [[] for _ in words]
    for event, end in zip(phonemes, ends):
        name = phone_name(event.name)
        if name == SILENCE or end <= event.sample:
            continue
        k = int(np.searchsorted(starts, event.text_position, side="right")) - 1
        if k < 0:
            raise EspeakCorpusError(f"espeak-ng spoke {name!r} before the first word of {text!r}")
        spans = per_word[k]
        if spans and spans[-1][2] == name and spans[-1][1] == event.sample:
            spans[-1] = (spans[-1][0], end, name)
        else:
            spans.append((event.sample, end, name))
    missing = [w for w, spans in zip(words, per_word) if not spans]
    if missing:
        raise EspeakCorpusError(f"espeak-ng produced no phonemes for {missing} in {text!r}")
    begin, stop = per_word[0][0][0], per_word[-1][-1][1]
    per_word = [[(a - begin, b - begin, p) for a, b, p in spans] for spans in per_word]
    return pcm[begin:stop], [span for spans in per_word for span in spans], per_word


def _word_list(words) -> list[str]:
    if words is None or isinstance(words, (str, Path)):
        return sorted({w.lower() for w in read_words(SpokenWordsSpec(word_list=str(words or "")))})
    out = sorted({str(w).strip().lower() for w in words if str(w).strip()})
    if not out or any(len(w.split()) != 1 for w in out):
        raise EspeakCorpusError(f"words: need at least one word, each without spaces, got {list(words)[:5]}")
    return out


def _check(speakers, utterances_per_speaker, min_words, max_words, pause_probability, min_pause_ms, max_pause_ms):
    if speakers is not None and not 1 <= speakers <= len(VOICES):
        raise EspeakCorpusError(f"speakers must be in [1, {len(VOICES)}] (the en-us voices), got {speakers}")
    if utterances_per_speaker < 1 or not 1 <= min_words <= max_words:
        raise EspeakCorpusError(
            f"need utterances_per_speaker >= 1 and 1 <= min_words <= max_words, got "
            f"{utterances_per_speaker}, {min_words}, {max_words}"
        )
    if not 0 <= pause_probability <= 1 or not 0 <= min_pause_ms <= max_pause_ms:
        raise EspeakCorpusError(
            f"need 0 <= pause_probability <= 1 and 0 <= min_pause_ms <= max_pause_ms, got "
            f"{pause_probability}, {min_pause_ms}, {max_pause_ms}"
        )


def _intervals(tier: list[tuple[int, int, str]], rate: int, duration: float) -> list[tuple[float, float, str]]:
    return [(a / rate, min(b / rate, duration), label) for a, b, label in tier]


def prepare_output(out_dir, voices, overwrite: bool) -> dict[str, Path]:
    """The corpus' paths under `out_dir` (corpus, truth, dictionary, truth_csv, pronunciations_csv,
    conditions_csv), with `corpus/` and `truth/` emptied when `overwrite` (else they must be empty), once
    `voices` are checked: at least one, no two the same (nor the same folder), each known to espeak-ng."""
    voices = [str(v) for v in voices]
    if not voices or len(set(voices)) != len(voices) or len({speaker_name(v) for v in voices}) != len(voices):
        raise EspeakCorpusError(f"voices: need at least one voice, no two the same, got {voices}")
    out = Path(out_dir)
    paths = {
        "corpus": out / "corpus",
        "truth": out / "truth",
        "dictionary": out / "dictionary.txt",
        "truth_csv": out / "truth.csv",
        "pronunciations_csv": out / "pronunciations.csv",
        "conditions_csv": out / "conditions.csv",
    }
    for key in ("corpus", "truth"):
        if paths[key].is_dir() and any(paths[key].iterdir()):
            if not overwrite:
                raise EspeakCorpusError(f"{paths[key]} is not empty (pass overwrite=True / --overwrite to replace it)")
            shutil.rmtree(paths[key])
    espeak = get_espeak()
    try:
        for voice in voices:
            espeak.set_voice(voice)
    except EspeakError as err:
        raise EspeakCorpusError(str(err)) from None
    return paths


def write_espeak_corpus(
    out_dir,
    *,
    speakers: int = 5,
    utterances_per_speaker: int = 40,
    min_words: int = 1,
    max_words: int = 4,
    pause_probability: float = 0.5,
    min_pause_ms: float = 100,
    max_pause_ms: float = 400,
    snr_db: float = 20.0,
    sample_rate: int = 22050,
    seed: int = 0,
    words=None,
    overwrite: bool = False,
    continuous: bool = False,
    voices=None,
    comma_probability: float = 0.3,
) -> dict:
    """Writes the corpus (see the module docstring) under `out_dir` and returns a summary.

    words: the word list (a list, or a text file with one word a line); None: `spoken_words.BUILTIN_WORDS`.
    overwrite: replace `OUT/corpus`, `OUT/truth`, `dictionary.txt` and `truth.csv` if they exist
    (otherwise a non-empty `corpus/` or `truth/` is an error).
    continuous: speak each utterance as one phrase (see "Continuous mode" in the module docstring);
    pause_probability, min_pause_ms and max_pause_ms then play no part, comma_probability (the chance of a
    comma between two words of a sentence) makes the pauses.
    voices: espeak voices, one speaker each, e.g. ["en-us", "en", "en-gb-scotland"]; None: the first
    `speakers` of `VOICES` (then `speakers` must be in range; with `voices` it is ignored).
    Returns counts (`recordings`, `words`, `dictionary_words`, `pronunciations`, `phones`), `seconds` of
    audio, `elapsed_seconds`, `speakers` (folder names), `voices`, `sample_rate` and the paths written;
    continuous mode adds `pronunciations_csv`, `ambiguous_words` (dictionary words with more than one
    pronunciation), `ambiguous_tokens` (their occurrences) and `tokens_not_first` (word occurrences spoken
    otherwise than their first-listed pronunciation).
    """
    import soundfile
    import soxr

    tic = time.perf_counter()
    _check(
        None if voices is not None else speakers,
        utterances_per_speaker,
        min_words,
        max_words,
        pause_probability,
        min_pause_ms,
        max_pause_ms,
    )
    if not 0 <= comma_probability <= 1:
        raise EspeakCorpusError(f"need 0 <= comma_probability <= 1, got {comma_probability}")
    vocabulary = _word_list(words)
    voices = list(VOICES[:speakers]) if voices is None else voices
    paths = prepare_output(out_dir, voices, overwrite)
    espeak = get_espeak()
    if not continuous and overwrite:  # a continuous corpus's; corpus_report.py would read them with these
        for key in ("pronunciations_csv", "conditions_csv"):
            paths[key].unlink(missing_ok=True)
    if continuous:
        pool = sentence_pool(vocabulary, utterances_per_speaker, min_words, max_words, comma_probability, seed)
        summary = write_phrases(
            paths,
            voices,
            pool,
            render=functools.partial(white_noise_render, snr_db=snr_db),
            sample_rate=sample_rate,
            seed=seed,
        )
        return {**summary, "elapsed_seconds": round(time.perf_counter() - tic, 3)}
    source = espeak.sample_rate
    pronunciations = collections.defaultdict(collections.Counter)
    rows, seconds, tokens, phone_count = [], 0.0, 0, 0
    for s, voice in enumerate(voices):
        speaker = speaker_name(voice)
        for folder in (paths["corpus"], paths["truth"]):
            (folder / speaker).mkdir(parents=True, exist_ok=True)
        espeak.set_voice(voice)
        for u in range(utterances_per_speaker):
            rng = np.random.default_rng([seed, s, u])
            said = [
                vocabulary[int(i)] for i in rng.integers(len(vocabulary), size=rng.integers(min_words, max_words + 1))
            ]
            rate, pitch = int(rng.integers(RATES[0], RATES[1] + 1)), int(rng.integers(PITCHES[0], PITCHES[1] + 1))
            pieces, spoken, word_tier, phone_tier = [], [], [], []
            position = int(source * rng.uniform(*PAD_MS) / 1000)
            pieces.append(np.zeros(position, np.float32))
            for k, word in enumerate(said):
                if k and rng.random() < pause_probability:
                    gap = int(source * rng.uniform(min_pause_ms, max_pause_ms) / 1000)
                    pieces.append(np.zeros(gap, np.float32))
                    position += gap
                pcm, spans = speak_word(word, rate, pitch)
                pronunciations[word][" ".join(p for _, _, p in spans)] += 1
                phone_tier += [(position + a, position + b, p) for a, b, p in spans]
                word_tier.append((position + spans[0][0], position + spans[-1][1], word))
                spoken.append(pcm.astype(np.float32) / 32768.0)
                pieces.append(spoken[-1])
                position += len(pcm)
            pieces.append(np.zeros(int(source * rng.uniform(*PAD_MS) / 1000), np.float32))
            clean = np.concatenate(pieces)
            if sample_rate != source:
                clean = soxr.resample(clean, source, sample_rate).astype(np.float32)
            power = float(np.mean(np.concatenate(spoken) ** 2))
            noise = rng.normal(0.0, math.sqrt(power / 10 ** (snr_db / 10)), len(clean))
            audio = np.clip(clean + noise, -1.0, 32767 / 32768).astype(np.float32)
            duration = len(audio) / sample_rate
            uttid = f"{speaker}_{u:04d}"
            soundfile.write(paths["corpus"] / speaker / f"{uttid}.wav", audio, sample_rate, subtype="PCM_16")
            (paths["corpus"] / speaker / f"{uttid}.lab").write_text(" ".join(said) + "\n", encoding="utf-8")
            tiers = {
                "words": _intervals(word_tier, source, duration),
                "phones": _intervals(phone_tier, source, duration),
            }
            write_textgrid(paths["truth"] / speaker / f"{uttid}.TextGrid", tiers, duration)
            rows += [(f"{speaker}/{uttid}", name, a, b, label) for name, tier in tiers.items() for a, b, label in tier]
            seconds += duration
            tokens += len(said)
            phone_count += len(phone_tier)
    lines = [
        f"{word}\t{pron}"
        for word in sorted(pronunciations)
        for pron, _ in sorted(pronunciations[word].items(), key=lambda item: (-item[1], item[0]))
    ]
    paths["dictionary"].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    with open(paths["truth_csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["recording", "tier", "begin", "end", "label"])
        writer.writerows((rec, tier, f"{a:.4f}", f"{b:.4f}", label) for rec, tier, a, b, label in rows)
    return {
        "recordings": len(voices) * utterances_per_speaker,
        "words": tokens,
        "phones": phone_count,
        "dictionary_words": len(pronunciations),
        "pronunciations": len(lines),
        "seconds": round(seconds, 3),
        "elapsed_seconds": round(time.perf_counter() - tic, 3),
        "speakers": [speaker_name(v) for v in voices],
        "voices": voices,
        "sample_rate": sample_rate,
        "espeak_ng": espeak.version,
        **{key: str(paths[key]) for key in ("corpus", "truth", "dictionary", "truth_csv")},
    }


CITATION_RATE, CITATION_PITCH = 175, 50  # espeak's defaults: how a dictionary's citation forms are spoken
_POOL_KEY = 1 << 20  # seeds the sentence pool's generator apart from the speakers' ([seed, speaker, utterance])


def sentence_pool(vocabulary, count, min_words, max_words, comma_probability, seed) -> list[tuple[list, list]]:
    """`count` sentences as (words, commas): min_words..max_words words drawn uniformly from `vocabulary`,
    and after each word but the last a comma with `comma_probability`."""
    pool = []
    for u in range(count):
        rng = np.random.default_rng([seed, _POOL_KEY, u])
        words = [vocabulary[int(i)] for i in rng.integers(len(vocabulary), size=rng.integers(min_words, max_words + 1))]
        pool.append((words, [bool(rng.random() < comma_probability) for _ in words[:-1]]))
    return pool


def white_noise_render(clean: np.ndarray, words: list[tuple[int, int]], rng, *, snr_db: float) -> tuple:
    """The plain corpus' recording: ((S,) `clean` plus white noise at `snr_db` relative to the power of its
    `words` ((begin, end) samples), clipped to 16-bit range; {"snr_db": snr_db})."""
    power = float(np.mean(np.concatenate([clean[a:b] for a, b in words]) ** 2))
    noise = rng.normal(0.0, math.sqrt(power / 10 ** (snr_db / 10)), len(clean))
    return np.clip(clean + noise, -1.0, 32767 / 32768).astype(np.float32), {"snr_db": snr_db}


def write_phrases(paths, voices, pool, *, render, sample_rate, seed, rates=RATES, pitches=PITCHES) -> dict:
    """Continuous mode's writer: every voice speaks every (words, commas) sentence of `pool` as one phrase
    (`speak_phrase`, at a rate and pitch drawn from `rates` and `pitches`), padded with silence, resampled
    to `sample_rate` and passed through `render(clean, words, rng) -> (audio, conditions)` (words: (begin,
    end) samples of each word in `clean`; conditions: a dict of what it drew); writes the audio,
    transcripts, truth, dictionary, pronunciations and conditions (`conditions_csv`: recording, voice,
    rate, pitch and the render's keys) to `paths` (`prepare_output`) and returns the summary."""
    import soundfile
    import soxr

    espeak = get_espeak()
    source = espeak.sample_rate
    spoken_prons = collections.defaultdict(collections.Counter)
    rows, said_rows, conditions, seconds, phone_count = [], [], [], 0.0, 0
    for s, voice in enumerate(voices):
        speaker = speaker_name(voice)
        for folder in (paths["corpus"], paths["truth"]):
            (folder / speaker).mkdir(parents=True, exist_ok=True)
        espeak.set_voice(voice)
        for u, (said, commas) in enumerate(pool):
            rng = np.random.default_rng([seed, s, u])
            rate, pitch = int(rng.integers(rates[0], rates[1] + 1)), int(rng.integers(pitches[0], pitches[1] + 1))
            pcm, phones, per_word = speak_phrase(said, commas, rate, pitch)
            lead = int(source * rng.uniform(*PAD_MS) / 1000)
            tail = int(source * rng.uniform(*PAD_MS) / 1000)
            speech = pcm.astype(np.float32) / 32768.0
            clean = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
            if sample_rate != source:
                clean = soxr.resample(clean, source, sample_rate).astype(np.float32)
            scale = sample_rate / source
            word_samples = [(round((lead + w[0][0]) * scale), round((lead + w[-1][1]) * scale)) for w in per_word]
            audio, drawn = render(clean, word_samples, rng)
            duration = len(audio) / sample_rate
            uttid = f"{speaker}_{u:04d}"
            conditions.append({"recording": f"{speaker}/{uttid}", "voice": voice, "rate": rate, "pitch": pitch} | drawn)
            soundfile.write(paths["corpus"] / speaker / f"{uttid}.wav", audio, sample_rate, subtype="PCM_16")
            (paths["corpus"] / speaker / f"{uttid}.lab").write_text(" ".join(said) + "\n", encoding="utf-8")
            word_tier = [(lead + spans[0][0], lead + spans[-1][1], w) for w, spans in zip(said, per_word)]
            tiers = {
                "words": _intervals(word_tier, source, duration),
                "phones": _intervals([(lead + a, lead + b, p) for a, b, p in phones], source, duration),
            }
            write_textgrid(paths["truth"] / speaker / f"{uttid}.TextGrid", tiers, duration)
            rows += [(f"{speaker}/{uttid}", name, a, b, label) for name, tier in tiers.items() for a, b, label in tier]
            for k, (word, spans) in enumerate(zip(said, per_word)):
                pron = " ".join(p for _, _, p in spans)
                spoken_prons[word][pron] += 1
                said_rows.append((f"{speaker}/{uttid}", k, word, pron))
            seconds += duration
            phone_count += len(phones)
    # the dictionary: the citation forms (each word alone, en-us first, then each voice's), then the
    # other pronunciations heard in the phrases, most frequent first
    prons = {word: [] for word in spoken_prons}
    for voice in dict.fromkeys(["en-us", *voices]):
        espeak.set_voice(voice)
        for word in sorted(prons):
            _, spans = speak_word(word, CITATION_RATE, CITATION_PITCH)
            pron = " ".join(p for _, _, p in spans)
            if pron not in prons[word]:
                prons[word].append(pron)
    for word, counts in spoken_prons.items():
        heard = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        prons[word] += [pron for pron, _ in heard if pron not in prons[word]]
    lines = [f"{word}\t{pron}" for word in sorted(prons) for pron in prons[word]]
    paths["dictionary"].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    with open(paths["truth_csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["recording", "tier", "begin", "end", "label"])
        writer.writerows((rec, tier, f"{a:.4f}", f"{b:.4f}", label) for rec, tier, a, b, label in rows)
    with open(paths["pronunciations_csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["recording", "index", "word", "pronunciation"])
        writer.writerows(said_rows)
    with open(paths["conditions_csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(conditions[0]))
        writer.writeheader()
        writer.writerows(conditions)
    ambiguous = [(word, pron) for _, _, word, pron in said_rows if len(prons[word]) > 1]
    return {
        "recordings": len(voices) * len(pool),
        "words": len(said_rows),
        "phones": phone_count,
        "dictionary_words": len(prons),
        "pronunciations": len(lines),
        "ambiguous_words": sum(len(p) > 1 for p in prons.values()),
        "ambiguous_tokens": len(ambiguous),
        "tokens_not_first": sum(pron != prons[word][0] for word, pron in ambiguous),
        "seconds": round(seconds, 3),
        "speakers": [speaker_name(v) for v in voices],
        "voices": voices,
        "sample_rate": sample_rate,
        "espeak_ng": espeak.version,
        **{key: str(path) for key, path in paths.items()},
    }
