"""A small ctypes binding to the espeak-ng C library: audio plus phoneme and word events with sample positions.

The shared library and its voice data come from the `espeakng-loader` wheel (no system package).
The binding is hand-written because no maintained Python package exposes what this needs, the
`espeakEVENT_PHONEME` events with their sample positions, on top of the pip-installed library:
`espeakng-loader` only locates the library; `phonemizer`, `espeak-phonemizer` and `espeak-py` wrap
`espeak_TextToPhonemes` (phones, no timing); `espeakng` and `py-espeak-ng` run the `espeak-ng`
program; `pyttsx3` keeps a private ctypes module for playback with word callbacks; the C-extension
`espeak-ng-python` calls itself "minimally functional" and builds against a system libespeak-ng-dev.
The struct and constants follow `src/include/espeak-ng/speak_lib.h` (API revision 12).

`synth` returns the phoneme events; `synth_events` returns every event (`Event`): phonemes, and the
word, sentence and end-of-clause events whose `text_position` (1-based, in characters) and `length`
point into the text, so a phrase's phones can be given to its words (a phoneme event carries the
text position of the word it belongs to).

Synthesis runs in AUDIO_OUTPUT_SYNCHRONOUS mode: `espeak_Synth` returns once the callback has received
all audio and events. espeak-ng keeps global state, so there is one `Espeak` per process (`get_espeak`)
and it is not thread-safe.
"""

import ctypes
import dataclasses
import functools

import numpy as np

from jaxalign.errors import EspeakError

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of exit() when the data is missing
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
# espeak_EVENT_TYPE: what `Event.kind` names (MARK, PLAY, MSG_TERMINATED and SAMPLERATE are not kept)
_EVENT_KINDS = {1: "word", 2: "sentence", 5: "end", 7: "phoneme"}
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_PITCH = 3
RATE_MIN, RATE_MAX = 80, 450  # words per minute


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples since the start of this message
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),  # phoneme events: the phoneme mnemonic, NUL-terminated unless 8 bytes long
    ]


@dataclasses.dataclass(frozen=True)
class Event:
    """One espeak-ng event of a `synth_events` call.

    kind: "phoneme", "word" (start of a word), "sentence" (start of a sentence) or "end" (end of a
    clause or sentence). sample: samples since the start of the text's audio. text_position: 1-based
    character position in the text (a phoneme: of its word; a word: its first character). length: a
    word's length in characters (0 otherwise). name: a phoneme's mnemonic ("" otherwise). number: a
    word's or sentence's 1-based count (0 for the others).
    """

    kind: str
    sample: int
    text_position: int
    length: int = 0
    name: str = ""
    number: int = 0


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class Espeak:
    """espeak-ng in synchronous retrieval mode; `synth(text)` -> (int16 audio, phoneme events)."""

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError:
            raise EspeakError(
                "espeak-ng: the espeakng-loader package is not installed (pip install espeakng-loader)"
            ) from None
        lib_path = espeakng_loader.get_library_path()
        try:
            self.lib = ctypes.CDLL(lib_path)
            data_path = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as err:
            raise EspeakError(f"espeak-ng: cannot load the library {lib_path} or its data ({err})") from None
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        # text, size, position, position_type, end_position, flags, unique_identifier*, user_data*
        c = ctypes
        lib.espeak_Synth.argtypes = [
            c.c_char_p,
            c.c_size_t,
            c.c_uint,
            c.c_int,
            c.c_uint,
            c.c_uint,
            c.c_void_p,
            c.c_void_p,
        ]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), options)
        if self.sample_rate <= 0:
            raise EspeakError(f"espeak-ng: initialisation failed with data path {data_path}")
        self.version = lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        self._events: list[Event] = []
        self._callback = _Callback(self._receive)  # kept referenced: espeak holds the raw pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._voice = None

    def _receive(self, wav, num_samples, events) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            kind = _EVENT_KINDS.get(event.type)
            if kind == "phoneme":
                name = event.id.string.decode("utf-8", "replace")
                self._events.append(Event(kind, int(event.sample), int(event.text_position), name=name))
            elif kind is not None:
                self._events.append(
                    Event(kind, int(event.sample), int(event.text_position), int(event.length), number=event.id.number)
                )
            i += 1
        return 0

    def set_voice(self, name: str) -> None:
        """`name`: a voice such as "en", "en-us", "en-gb-x-rp", optionally with a variant: "en+f2"."""
        if name != self._voice:
            if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
                hint = "e.g. en, en-us, en-gb-x-rp, en-029, optionally with a variant such as +m3 or +f2"
                raise EspeakError(f"espeak-ng has no voice {name!r} ({hint})")
            self._voice = name

    def synth(self, text: str, *, rate: int = 175, pitch: int = 50) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Speaks `text` with the current voice.

        rate: words per minute, 80..450. pitch: base pitch 0..100 (50 normal).
        Returns (S,) int16 audio at `sample_rate` and the phoneme events in order as
        (start sample, espeak mnemonic); an event marks where its phoneme starts.
        """
        audio, events = self.synth_events(text, rate=rate, pitch=pitch)
        return audio, [(e.sample, e.name) for e in events if e.kind == "phoneme"]

    def synth_events(self, text: str, *, rate: int = 175, pitch: int = 50) -> tuple[np.ndarray, list[Event]]:
        """Like `synth`, with every event in the order espeak sent them: phonemes, words, sentences, ends."""
        if not (RATE_MIN <= rate <= RATE_MAX and 0 <= pitch <= 100):
            raise EspeakError(
                f"espeak-ng: rate {rate} must be in [{RATE_MIN}, {RATE_MAX}] and pitch {pitch} in [0, 100]"
            )
        self.lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        self._chunks, self._events = [], []
        data = text.encode()
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise EspeakError(f"espeak-ng: synthesis of {text!r} failed with status {status}")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, list(self._events)


@functools.cache
def get_espeak() -> Espeak:
    """The process's one espeak-ng instance (started on first use)."""
    return Espeak()
