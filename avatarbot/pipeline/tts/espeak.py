"""Offline TTS with libespeak-ng (bundled by the `espeakng-loader` wheel), driven through ctypes.

We run espeak in AUDIO_OUTPUT_SYNCHRONOUS mode with phoneme events switched on: espeak_Synth
returns only when the whole text is spoken, and our synth callback collects the int16 samples
and the espeakEVENT_PHONEME events (mnemonic + audio position in ms) that drive the visemes.
libespeak-ng keeps global state, so one module-level engine serves every backend instance and
every call holds its lock.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline.tts.text import (
    check_text,
    normalize_language,
    split_language_runs,
)
from avatarbot.pipeline.types import Availability, PhonemeEvent, SpeechResult, VoiceInfo

# speak_lib.h (espeak-ng 1.52, API revision 12)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_RATE_NORMAL = 175
_RATE_MIN, _RATE_MAX = 80, 450

DEFAULT_VOICE_FOR_LANGUAGE = {"cmn": "cmn", "en": "en-us", "ru": "ru", "ko": "ko"}
RUN_GAP_S = 0.12  # pause between language runs of mixed text
_STRESS_MARKS = "'," + "%="


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    # x86_64: six 4-byte ints, then the pointer at offset 24, the 8-byte union at 32; size 40.
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # priority byte + NUL-terminated code, repeated, then NUL
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class _EspeakVoice:
    name: str
    languages: tuple[str, ...]
    identifier: str
    gender: str

    @property
    def code(self) -> str:
        return self.languages[0] if self.languages else self.identifier


def _read_languages(ptr: int | None) -> tuple[str, ...]:
    if not ptr:
        return ()
    codes: list[str] = []
    offset = 0
    while True:
        if ctypes.string_at(ptr + offset, 1) == b"\0":
            return tuple(codes)
        code = ctypes.string_at(ptr + offset + 1)  # skip the priority byte, read to NUL
        codes.append(code.decode("utf-8", "replace"))
        offset += 2 + len(code)


class _Engine:
    """The one libespeak-ng instance of this process."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lock = threading.Lock()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            espeakng_loader.get_data_path().encode(),
            _INITIALIZE_PHONEME_EVENTS,
        )
        if rate <= 0:
            raise BackendUnavailable("espeak: libespeak-ng failed to initialise (data path?)")
        self.lib = lib
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, str]] = []  # (audio ms, mnemonic)
        self._callback = _SynthCallback(self._on_synth)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.voices = self._list_voices()

    def _on_synth(self, wav, n_samples, events) -> int:  # type: ignore[no-untyped-def]
        if wav and n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                raw = bytes(event.id.string).split(b"\0", 1)[0]
                self._events.append((int(event.audio_position), raw.decode("utf-8", "replace")))
            i += 1
        return 0

    def _list_voices(self) -> list[_EspeakVoice]:
        array = self.lib.espeak_ListVoices(None)
        voices: list[_EspeakVoice] = []
        i = 0
        while array[i]:
            v = array[i].contents
            gender = {1: "male", 2: "female"}.get(int(v.gender), "")
            voices.append(
                _EspeakVoice(
                    name=(v.name or b"").decode("utf-8", "replace"),
                    languages=_read_languages(v.languages),
                    identifier=(v.identifier or b"").decode("utf-8", "replace"),
                    gender=gender,
                )
            )
            i += 1
        return voices

    def speak(
        self, text: str, voice: _EspeakVoice, rate: int, pitch: int
    ) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Speak one run; return int16 samples and the (ms, mnemonic) phoneme events."""
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise BackendUnavailable(f"espeak: cannot load voice {voice.name!r}")
            self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
            self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            self.lib.espeak_SetParameter(_PARAM_RANGE, 50, 0)
            self.lib.espeak_SetParameter(_PARAM_VOLUME, 100, 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8")
            err = self.lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            chunks, events = self._chunks, self._events
            self._chunks, self._events = [], []
        if err != 0:
            raise BackendUnavailable(f"espeak: synthesis failed with error {err}")
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return samples, events


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def _phoneme_events(
    events: list[tuple[int, str]], offset_s: float, duration_s: float
) -> list[PhonemeEvent]:
    """espeak's (start ms, mnemonic) list -> PhonemeEvents; each ends where the next starts."""
    cleaned: list[tuple[float, str]] = []
    for ms, mnemonic in events:
        name = mnemonic.lstrip(_STRESS_MARKS) or mnemonic
        start = min(max(ms / 1000.0, 0.0), duration_s)
        if cleaned and start <= cleaned[-1][0]:
            # Same instant (e.g. "_|" then "_:"): keep the later, it is the one heard.
            cleaned[-1] = (cleaned[-1][0], name)
            continue
        cleaned.append((start, name))
    result: list[PhonemeEvent] = []
    for i, (start, name) in enumerate(cleaned):
        end = cleaned[i + 1][0] if i + 1 < len(cleaned) else duration_s
        if end > start:
            result.append(PhonemeEvent(start + offset_s, end + offset_s, name))
    return result


class EspeakBackend:
    """TTSBackend for libespeak-ng: fast, offline, robotic; Mandarin and English and ~100 more."""

    name = "espeak"

    def availability(self) -> Availability:
        try:
            import espeakng_loader
        except ImportError:
            return Availability.no("espeak: python package 'espeakng-loader' is not installed")
        lib = Path(espeakng_loader.get_library_path())
        if not lib.exists():
            return Availability.no(f"espeak: library missing at {lib}")
        try:
            espeakng_loader.get_data_path()
        except RuntimeError:
            return Availability.no("espeak: espeak-ng-data missing from espeakng-loader")
        return Availability.yes()

    def voices(self) -> list[VoiceInfo]:
        return [
            VoiceInfo(id=v.code, name=v.name, language=v.code, backend=self.name, gender=v.gender)
            for v in _get_engine().voices
        ]

    def _resolve_voice(self, voice: str) -> _EspeakVoice:
        """Find a voice by language code, name or identifier (case-insensitive)."""
        wanted = voice.strip().lower()
        wanted = DEFAULT_VOICE_FOR_LANGUAGE.get(normalize_language(wanted), wanted)
        voices = _get_engine().voices
        for match in (
            lambda v: v.code.lower() == wanted,
            lambda v: v.name.lower() == wanted,
            lambda v: v.identifier.lower() == wanted,
            lambda v: wanted in (code.lower() for code in v.languages),
        ):
            for v in voices:
                if match(v):
                    return v
        raise InvalidInput(f"espeak: unknown voice {voice!r}")

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        speed: float = 1.0,
        pitch: float = 1.0,
    ) -> SpeechResult:
        text = check_text(text)
        if not 0.25 <= speed <= 4.0:
            raise InvalidInput(f"speed must be between 0.25 and 4.0, got {speed}")
        if not 0.25 <= pitch <= 2.0:
            raise InvalidInput(f"pitch must be between 0.25 and 2.0, got {pitch}")
        engine = _get_engine()
        rate = round(min(max(_RATE_NORMAL * speed, _RATE_MIN), _RATE_MAX))
        pitch_value = round(min(max(50 * pitch, 0), 100))
        runs = self._plan_runs(text, voice, language)
        pieces: list[np.ndarray] = []
        phonemes: list[PhonemeEvent] = []
        gap = np.zeros(int(RUN_GAP_S * engine.sample_rate), dtype=np.int16)
        offset = 0  # samples
        for index, (run_voice, chunk) in enumerate(runs):
            if index > 0:
                start = offset / engine.sample_rate
                phonemes.append(PhonemeEvent(start, start + RUN_GAP_S, "_"))
                pieces.append(gap)
                offset += len(gap)
            samples, events = engine.speak(chunk, run_voice, rate, pitch_value)
            duration = len(samples) / engine.sample_rate
            phonemes.extend(_phoneme_events(events, offset / engine.sample_rate, duration))
            pieces.append(samples)
            offset += len(samples)
        audio = np.concatenate(pieces).astype(np.float32) / 32768.0
        if audio.size == 0 or not np.any(audio):
            raise InvalidInput("text has nothing speakable")
        used = list(dict.fromkeys(v.code for v, _ in runs))
        return SpeechResult(
            samples=audio,
            sample_rate=engine.sample_rate,
            phonemes=phonemes,
            language="+".join(used),
            voice="+".join(used),
        )

    def _plan_runs(
        self, text: str, voice: str | None, language: str | None
    ) -> list[tuple[_EspeakVoice, str]]:
        """Which voice speaks which part of the text.

        An explicit language speaks the whole text in it. Otherwise the text is split into
        Chinese/English runs; an explicit voice speaks the runs of its own language.
        """
        chosen = self._resolve_voice(voice) if voice else None
        if language:
            lang = normalize_language(language)
            if chosen is None:
                chosen = self._resolve_voice(DEFAULT_VOICE_FOR_LANGUAGE.get(lang, lang))
            return [(chosen, text)]
        runs = split_language_runs(text)
        plan: list[tuple[_EspeakVoice, str]] = []
        for lang, chunk in runs:
            if chosen is not None and normalize_language(chosen.code.split("-")[0]) == lang:
                run_voice = chosen
            elif chosen is not None and len(runs) == 1:
                run_voice = chosen  # a single-language text: the caller's voice speaks it all
            else:
                run_voice = self._resolve_voice(DEFAULT_VOICE_FOR_LANGUAGE[lang])
            plan.append((run_voice, chunk))
        return plan
