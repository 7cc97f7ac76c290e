"""Voice notes heard as words before a bot reads them: the channel hands over the audio
(`AudioSource`), the voice gateway transcribes it with `STUDIO_STT_MODEL`, and the turn goes
on with the transcript as its text (kept with the audio's length). Without a speech-to-text
model the person is told plainly that the bot reads text only; a note that cannot be fetched
or heard is answered with a short apology and the turn carries the error (counted, and shown
where turns are traced), never retried in a loop.

A bot whose spec says `voice: true` answers a voice note with one (`spoken`, with
`STUDIO_TTS_MODEL`); the conversation keeps the answer's words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from runtime.channel import AudioSource, ChannelRegistry, SendError, UnknownChannelError
from runtime.llm import LlmError
from runtime.messages import (
    MAX_ATTACHMENT_BYTES,
    Attachment,
    FileRef,
    IncomingMessage,
    OutgoingMessage,
)
from runtime.voice import TEXT_ONLY, VoiceGateway

logger = logging.getLogger(__name__)

NOT_HEARD = "Sorry, I couldn't listen to that voice message. Could you type it instead?"
NO_WORDS = "I couldn't make out any words in that voice message. Could you say it again or type it?"


@dataclass(frozen=True, slots=True)
class Heard:
    """A voice note's outcome: the message with its words as text, or what to answer instead
    (and the error a failed attempt leaves on the turn)."""

    message: IncomingMessage | None = None
    reply: str = ""
    error: str | None = None


def voice_note(message: IncomingMessage) -> FileRef | None:
    """The voice note a message without words brings (None: none; typed words win)."""
    if message.text.strip():
        return None
    return next((file for file in message.files if file.voice), None)


async def hear(
    message: IncomingMessage,
    note: FileRef,
    *,
    voice: VoiceGateway | None,
    channels: ChannelRegistry,
) -> Heard:
    """What `note` (a voice note of `message`) said, as the message the bot reads."""
    if voice is None or not voice.can_transcribe:
        return Heard(reply=TEXT_ONLY)
    address = message.address
    extra = {"deployment": address.deployment_id, "conversation": address.conversation}
    try:
        channel = channels.get(address.channel)
    except UnknownChannelError:
        return Heard(reply=TEXT_ONLY)
    if not isinstance(channel, AudioSource):
        return Heard(reply=TEXT_ONLY)
    try:
        audio = await channel.download(address.deployment_id, note)
    except SendError as exc:
        logger.warning("a voice note could not be fetched: %s", exc, extra=extra)
        return Heard(reply=NOT_HEARD, error=f"voice note not fetched: {exc}")
    try:
        transcript = await voice.transcribe(
            audio, filename=note.name, mime_type=note.mime or "audio/ogg"
        )
    except LlmError as exc:
        logger.warning("a voice note could not be transcribed: %s", exc, extra=extra)
        return Heard(reply=NOT_HEARD, error=f"speech to text: {exc}")
    words = " ".join(transcript.text.split())  # a long one meets the bot's input guard
    if not words:
        return Heard(reply=NO_WORDS)
    return Heard(message.model_copy(update={"text": words, "voice_s": transcript.duration_s}))


def heard(message: IncomingMessage) -> bool:
    """Whether `message`'s words were heard from a voice note (`hear`)."""
    return bool(message.text) and any(file.voice for file in message.files)


async def spoken(reply: OutgoingMessage, *, voice: VoiceGateway | None) -> OutgoingMessage:
    """`reply` as a voice note (its text spoken with `STUDIO_TTS_MODEL`), for a bot that
    answers voice by voice; as it is, in text, when it cannot be spoken (no model, an answer
    too long for speech, the provider failing: logged)."""
    if voice is None or not voice.can_speak or not reply.text.strip():
        return reply
    try:
        speech = await voice.speak(reply.text)
    except LlmError as exc:
        extra = {"deployment": reply.address.deployment_id}
        logger.warning("an answer was not spoken, sent in text: %s", exc, extra=extra)
        return reply
    if len(speech.audio) > MAX_ATTACHMENT_BYTES:
        return reply
    audio = Attachment(name=f"answer.{speech.extension}", data=speech.audio, mime=speech.mime_type)
    return reply.model_copy(update={"text": "", "file": audio})
