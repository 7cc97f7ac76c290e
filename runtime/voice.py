"""The voice gateway: voice notes in (speech to text), voice answers out (text to speech).

Both go through litellm (`atranscription` with `STUDIO_STT_MODEL`, `aspeech` with
`STUDIO_TTS_MODEL`) under the LLM gateway's retry policy and deadline, with its error kinds
(`LlmError`), and `openai/<name>` models reach `STUDIO_LLM_API_BASE` as completions do. Without a
model, the matching call is not available (`can_transcribe`, `can_speak`): a channel then answers
a voice note with `TEXT_ONLY`.

Nothing here decodes audio: the duration of a voice note is what the provider reports (OpenAI's
`verbose_json` `duration`, or a `json` answer's usage in seconds), else unknown. The speech's type
comes from its first bytes (a server may ignore the asked format), not from decoding it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from runtime.llm import LlmError, LlmGateway, RetryPolicy

logger = logging.getLogger(__name__)

# What a channel answers to a voice note when no speech-to-text model is configured.
TEXT_ONLY = "I read text only: please type your message."
# OpenAI's limits: an upload to transcription, and the input of one speech request.
MAX_AUDIO_BYTES = 25 * 1024 * 1024
MAX_SPEECH_CHARS = 4096
DEFAULT_VOICE = "alloy"

# The formats OpenAI's speech takes. "opus" is Ogg Opus: a Telegram voice note and a WhatsApp
# voice message as they are; "mp3" plays everywhere else.
SpeechFormat = Literal["opus", "mp3", "aac", "flac", "wav", "pcm"]
_FORMAT_TYPES: dict[str, str] = {
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",  # raw 16-bit little-endian samples at 24 kHz (OpenAI)
}
_EXTENSIONS = {"audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/aac": "aac", "audio/flac": "flac"}
_EXTENSIONS |= {"audio/wav": "wav", "audio/pcm": "pcm"}

# The upload names OpenAI's transcription accepts (it goes by the extension), and the extension
# for each type a platform sends (Telegram's voice notes are .oga, WhatsApp's have no name).
_UPLOAD_EXTENSIONS = frozenset(
    {"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"}
)
_TYPE_EXTENSIONS = {
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "application/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "video/mp4": "mp4",
    "audio/wav": "wav",
    "audio/wave": "wav",
    "audio/x-wav": "wav",
    "audio/webm": "webm",
    "video/webm": "webm",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
}


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a voice note said. `duration_s`: the audio's length as the provider reported it,
    None when it reported none. `text` may be empty (silence)."""

    text: str
    model: str
    duration_s: float | None = None
    cost_usd: float | None = None  # None: unknown (no price for the model, or no duration)


@dataclass(frozen=True, slots=True)
class Speech:
    """A spoken answer: the audio's bytes and their MIME type (from the bytes themselves)."""

    audio: bytes
    mime_type: str
    model: str
    cost_usd: float | None = None  # None: no price known for the model

    @property
    def extension(self) -> str:
        """A file extension for the audio ("ogg", "mp3", ...; "bin" when unknown)."""
        return _EXTENSIONS.get(self.mime_type, "bin")

    @property
    def voice_note(self) -> bool:
        """Ogg Opus: sent as a voice note (Telegram `sendVoice`, WhatsApp voice), not a file."""
        return self.mime_type == "audio/ogg" and b"OpusHead" in self.audio[:80]


class VoiceLimitError(LlmError):
    """Refused before any call: audio over `MAX_AUDIO_BYTES`, speech over `MAX_SPEECH_CHARS`,
    or nothing to send (kind `bad_request`; the message says which limit, for a person)."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_request", message)


class VoiceGateway:
    """Speech to text and text to speech through litellm, with the LLM gateway's retries,
    timeouts, deadline, `openai/` routing and error kinds. A model left unset (None) makes its
    call unavailable: check `can_transcribe` / `can_speak` first (or get `LlmError`)."""

    def __init__(
        self,
        *,
        stt_model: str | None,
        tts_model: str | None,
        api_base: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        voice: str = DEFAULT_VOICE,
        speech_format: SpeechFormat = "opus",
    ) -> None:
        self.stt_model = stt_model or None
        self.tts_model = tts_model or None
        self.voice = voice
        self.speech_format: SpeechFormat = speech_format
        # The LLM gateway's plumbing (litellm's import, where a model's server is, the retry
        # loop), not its models: one policy for every call to a provider.
        self._calls = LlmGateway(api_base=api_base, policy=policy, sleep=sleep)

    @property
    def can_transcribe(self) -> bool:
        """Whether voice notes can be read (a speech-to-text model is set)."""
        return self.stt_model is not None

    @property
    def can_speak(self) -> bool:
        """Whether answers can be spoken (a text-to-speech model is set)."""
        return self.tts_model is not None

    async def transcribe(self, audio: bytes, *, filename: str, mime_type: str) -> Transcript:
        """The text of `audio` (a voice note as the platform gave it), or `LlmError`:
        `VoiceLimitError` before any call for empty audio or audio over 25 MB.

        `filename` and `mime_type` are sent with the upload; OpenAI goes by the name's
        extension, so a name without one it accepts gets the type's (`voice.ogg` for
        `audio/ogg; codecs=opus`). The response format is litellm's choice: `verbose_json`
        (with the duration) for Whisper models, `json` for `gpt-4o-*-transcribe`."""
        model = self.stt_model
        if model is None:
            raise LlmError("bad_request", "no speech-to-text model is set (STUDIO_STT_MODEL)")
        if not audio:
            raise VoiceLimitError("the voice note is empty")
        if len(audio) > MAX_AUDIO_BYTES:
            raise VoiceLimitError(
                f"the voice note is {_megabytes(len(audio))}: transcription takes at most "
                f"{_megabytes(MAX_AUDIO_BYTES)}"
            )
        content_type = _bare_type(mime_type)
        name = upload_name(filename, content_type)
        upload = (name, audio, content_type) if content_type else (name, audio)
        options = self._calls.call_options(model)

        async def attempt(litellm: ModuleType, limit_s: float) -> Transcript:
            response = await litellm.atranscription(
                model=model,
                file=upload,
                timeout=limit_s,
                num_retries=0,
                max_retries=0,
                **options,
            )
            duration = _duration(response)
            cost = _cost(response)
            if cost == 0.0 and duration is None:  # priced by the second, for 0 s: unknown
                cost = None
            return Transcript(
                text=(getattr(response, "text", None) or "").strip(),
                model=model,
                duration_s=duration,
                cost_usd=cost,
            )

        return await self._calls.call(model, attempt)

    async def speak(self, text: str, *, audio_format: SpeechFormat | None = None) -> Speech:
        """`text` spoken with the gateway's voice, as `audio_format` (default: the gateway's,
        Ogg Opus unless set otherwise), or `LlmError`: `VoiceLimitError` before any call for
        blank text or text over 4,096 characters."""
        model = self.tts_model
        if model is None:
            raise LlmError("bad_request", "no text-to-speech model is set (STUDIO_TTS_MODEL)")
        if not text.strip():
            raise VoiceLimitError("there is no text to speak")
        if len(text) > MAX_SPEECH_CHARS:
            raise VoiceLimitError(
                f"the answer has {len(text):,} characters: speech takes at most "
                f"{MAX_SPEECH_CHARS:,}"
            )
        kind = audio_format or self.speech_format
        options = self._calls.call_options(model)

        async def attempt(litellm: ModuleType, limit_s: float) -> Speech:
            response = await litellm.aspeech(
                model=model,
                input=text,
                voice=self.voice,
                response_format=kind,
                timeout=limit_s,
                num_retries=0,
                max_retries=0,
                **options,
            )
            audio = bytes(response.content)
            if not audio:  # a provider failure, not retried (the gateway makes it an LlmError)
                raise ValueError(f"{model} answered with no audio")
            header = _bare_type(getattr(response, "content_type", None) or "")
            mime_type = _audio_type(audio, header, kind)
            return Speech(audio=audio, mime_type=mime_type, model=model, cost_usd=_cost(response))

        return await self._calls.call(model, attempt)


def upload_name(filename: str, mime_type: str) -> str:
    """`filename` when its extension is one transcription accepts; else the name with the
    extension of `mime_type` when known (`voice` when there is no name); else `filename`."""
    stem, dot, extension = filename.rpartition(".")
    if dot and extension.lower() in _UPLOAD_EXTENSIONS:
        return filename
    wanted = _TYPE_EXTENSIONS.get(_bare_type(mime_type))
    if wanted is None:
        return filename or "voice"
    base = (stem if dot else filename) or "voice"
    return f"{base}.{wanted}"


def _bare_type(mime_type: str) -> str:
    """`audio/ogg` from `audio/ogg; codecs=opus` (lower case, parameters dropped)."""
    return mime_type.split(";", 1)[0].strip().lower()


def _duration(response: Any) -> float | None:
    """The audio's duration the provider reported: `verbose_json`'s `duration`, or a `json`
    answer's usage in seconds; None when neither is there."""
    for value in (
        getattr(response, "duration", None),
        _usage_seconds(getattr(response, "usage", None)),
    ):
        if isinstance(value, int | float | str):
            try:
                seconds = float(value)
            except ValueError:
                continue
            if seconds >= 0:
                return seconds
    return None


def _cost(response: Any) -> float | None:
    """The price litellm put on the call; None when it knows none."""
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    return float(cost) if isinstance(cost, int | float) else None


def _usage_seconds(usage: Any) -> Any:
    if usage is None:
        return None
    if isinstance(usage, dict):
        return usage.get("seconds") if usage.get("type") == "duration" else None
    return getattr(usage, "seconds", None) if getattr(usage, "type", None) == "duration" else None


def _audio_type(audio: bytes, header: str, asked: str) -> str:
    """The MIME type of `audio` from its first bytes; else the server's audio type; else the
    asked format's (raw PCM has no header)."""
    if audio.startswith(b"OggS"):
        return "audio/ogg"
    if audio.startswith(b"ID3"):
        return "audio/mpeg"
    if audio.startswith(b"fLaC"):
        return "audio/flac"
    if audio.startswith(b"RIFF") and audio[8:12] == b"WAVE":
        return "audio/wav"
    if len(audio) > 1 and audio[0] == 0xFF:
        if audio[1] & 0xF6 == 0xF0:  # an ADTS frame (layer bits 00)
            return "audio/aac"
        if audio[1] & 0xE0 == 0xE0:  # an MPEG audio frame
            return "audio/mpeg"
    if header.startswith("audio/"):
        return header
    return _FORMAT_TYPES.get(asked, "application/octet-stream")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
