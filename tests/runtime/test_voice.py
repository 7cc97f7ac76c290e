"""The voice gateway through the real litellm over real HTTP to the fake OpenAI-compatible server.

Backoff sleeps are injected (recorded, not slept) so retries stay fast; timeouts are real.
"""

from __future__ import annotations

import time

import pytest

from runtime.llm import LlmError, RetryPolicy
from runtime.voice import (
    MAX_AUDIO_BYTES,
    MAX_SPEECH_CHARS,
    TEXT_ONLY,
    Speech,
    SpeechFormat,
    Transcript,
    VoiceGateway,
    VoiceLimitError,
    upload_name,
)
from tests.fakes.llm import SPEECH_FORMATS, FakeLLM
from tests.runtime.test_llm import closed_port

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")

STT = "openai/whisper-1"  # a Whisper model: litellm asks for verbose_json
TTS = "openai/tts-1"
# What Telegram gives for a voice note (an .oga name) and WhatsApp (a type with codecs, no name).
VOICE_NOTE = b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead" + b"\x00" * 200


def voice(
    api_base: str | None,
    delays: list[float] | None = None,
    *,
    stt_model: str | None = STT,
    tts_model: str | None = TTS,
    attempts: int = 3,
    attempt_timeout_s: float = 1.0,
    deadline_s: float = 5.0,
    speech_format: SpeechFormat = "opus",
) -> VoiceGateway:
    """A gateway whose backoff sleeps are recorded in `delays` instead of slept."""
    recorded = delays if delays is not None else []

    async def record(delay: float) -> None:
        recorded.append(delay)

    policy = RetryPolicy(
        attempts=attempts,
        attempt_timeout_s=attempt_timeout_s,
        deadline_s=deadline_s,
        backoff_s=0.1,
        max_backoff_s=1.0,
    )
    return VoiceGateway(
        stt_model=stt_model,
        tts_model=tts_model,
        api_base=api_base,
        policy=policy,
        sleep=record,
        speech_format=speech_format,
    )


async def transcribe(
    gw: VoiceGateway,
    audio: bytes = VOICE_NOTE,
    *,
    filename: str = "file_7.oga",
    mime_type: str = "audio/ogg",
) -> Transcript:
    return await gw.transcribe(audio, filename=filename, mime_type=mime_type)


async def transcribe_error(gw: VoiceGateway, audio: bytes = VOICE_NOTE) -> LlmError:
    with pytest.raises(LlmError) as caught:
        await transcribe(gw, audio)
    return caught.value


async def speak_error(gw: VoiceGateway, text: str = "Hello.") -> LlmError:
    with pytest.raises(LlmError) as caught:
        await gw.speak(text)
    return caught.value


# -- transcription ----------------------------------------------------------------------------


async def test_a_voice_note_is_transcribed_with_its_duration(llm: FakeLLM) -> None:
    llm.transcript("  Where is my parcel?  ", duration=2.5)
    transcript = await transcribe(voice(llm.base_url))
    assert transcript.text == "Where is my parcel?"
    assert (transcript.model, transcript.duration_s) == (STT, 2.5)
    assert transcript.cost_usd == pytest.approx(2.5 * 0.0001)  # whisper-1: $0.006 a minute
    [call] = llm.calls
    assert call.path == "/v1/audio/transcriptions"
    # litellm asks Whisper models for verbose_json (hence the duration); its own retry
    # settings are not sent along as form fields
    assert call.body == {"model": "whisper-1", "response_format": "verbose_json"}
    upload = call.files["file"]
    assert (upload.filename, upload.content_type, upload.data) == (
        "file_7.oga",
        "audio/ogg",
        VOICE_NOTE,
    )
    assert call.authorization == "Bearer none"  # vLLM, Ollama... take any key


async def test_a_provider_that_gives_no_duration_leaves_it_unknown(llm: FakeLLM) -> None:
    llm.transcript("Hello.")
    transcript = await transcribe(voice(llm.base_url))
    assert transcript == Transcript(text="Hello.", model=STT, duration_s=None, cost_usd=None)


async def test_a_json_answer_gives_its_duration_in_its_usage(llm: FakeLLM) -> None:
    llm.transcript("Hello.", duration=3.0)
    transcript = await transcribe(voice(llm.base_url, stt_model="openai/gpt-4o-transcribe"))
    assert llm.calls[-1].body == {"model": "gpt-4o-transcribe"}  # json: the model's only format
    assert (transcript.text, transcript.duration_s) == ("Hello.", 3.0)


async def test_an_unscripted_transcription_says_what_it_got(llm: FakeLLM) -> None:
    transcript = await transcribe(voice(llm.base_url), b"OggS" + bytes(6))
    assert transcript.text == "transcript of 10 bytes"


async def test_a_voice_note_without_a_usable_name_is_named_after_its_type(
    llm: FakeLLM,
) -> None:
    # WhatsApp's voice messages come as "audio/ogg; codecs=opus" with no file name; OpenAI
    # goes by the name's extension and refuses one it does not know.
    gw = voice(llm.base_url)
    await transcribe(gw, filename="", mime_type="audio/ogg; codecs=opus")
    await transcribe(gw, filename="note.opus", mime_type="audio/opus")
    await transcribe(gw, filename="clip", mime_type="audio/mp4")
    await transcribe(gw, filename="note.ogg", mime_type="")  # no type: the name is enough
    names = [call.files["file"].filename for call in llm.calls]
    assert names == ["voice.ogg", "note.ogg", "clip.m4a", "note.ogg"]
    assert llm.calls[0].files["file"].content_type == "audio/ogg"


def test_upload_names() -> None:
    assert upload_name("file_7.oga", "audio/ogg") == "file_7.oga"
    assert upload_name("Voice.MP3", "audio/mpeg") == "Voice.MP3"
    assert upload_name("", "audio/ogg") == "voice.ogg"
    assert upload_name("note.opus", "audio/ogg;codecs=opus") == "note.ogg"
    assert upload_name("memo.amr", "audio/amr") == "memo.amr"  # unknown: the provider decides
    assert upload_name("", "") == "voice"


async def test_a_file_the_provider_refuses_is_a_bad_request_not_retried(llm: FakeLLM) -> None:
    delays: list[float] = []
    with pytest.raises(LlmError) as caught:
        await voice(llm.base_url, delays).transcribe(
            b"#!AMR\n", filename="memo.amr", mime_type="audio/amr"
        )
    assert caught.value.kind == "bad_request"
    assert "Invalid file format" in str(caught.value)
    assert len(llm.calls) == 1 and delays == []


# -- speech -----------------------------------------------------------------------------------


async def test_an_answer_is_spoken_as_an_ogg_opus_voice_note(llm: FakeLLM) -> None:
    speech = await voice(llm.base_url).speak("Your parcel arrives tomorrow.")
    head, _ = SPEECH_FORMATS["opus"]
    assert speech.audio == head + b"Your parcel arrives tomorrow."
    assert (speech.mime_type, speech.extension, speech.voice_note) == ("audio/ogg", "ogg", True)
    assert speech.model == TTS
    assert speech.cost_usd and speech.cost_usd > 0  # tts-1 is priced per character
    [call] = llm.calls
    assert call.path == "/v1/audio/speech"
    assert call.body == {
        "model": "tts-1",
        "input": "Your parcel arrives tomorrow.",
        "voice": "alloy",
        "response_format": "opus",
    }
    assert call.authorization == "Bearer none"


async def test_speech_in_another_format(llm: FakeLLM) -> None:
    speech = await voice(llm.base_url, tts_model="openai/my-tts", speech_format="mp3").speak("Hi.")
    assert (speech.mime_type, speech.extension, speech.voice_note) == ("audio/mpeg", "mp3", False)
    assert speech.cost_usd is None  # no price known for this model: unknown, never 0
    assert llm.calls[-1].body["response_format"] == "mp3"
    wav = await voice(llm.base_url).speak("Hi.", audio_format="wav")
    assert (wav.mime_type, llm.calls[-1].body["response_format"]) == ("audio/wav", "wav")


async def test_the_audio_type_comes_from_the_bytes_not_the_asked_format(llm: FakeLLM) -> None:
    # Some OpenAI-compatible servers ignore response_format and answer WAV anyway.
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40)
    llm.speech(wav, content_type="application/octet-stream")
    speech = await voice(llm.base_url).speak("Hi.")
    assert speech == Speech(audio=wav, mime_type="audio/wav", model=TTS, cost_usd=speech.cost_usd)
    assert not speech.voice_note
    # bytes with no known header: the server's audio type is believed
    llm.speech(b"\x01\x02\x03", content_type="audio/x-custom")
    assert (await voice(llm.base_url).speak("Hi.")).mime_type == "audio/x-custom"


async def test_no_audio_is_a_provider_error(llm: FakeLLM) -> None:
    llm.speech(b"", content_type="audio/ogg")
    error = await speak_error(voice(llm.base_url))
    assert error.kind == "provider" and "no audio" in str(error)
    assert len(llm.calls) == 1


# -- retries and errors -----------------------------------------------------------------------


async def test_a_provider_error_is_retried(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.fail(500)
    llm.transcript("At last.", duration=1.0)
    transcript = await transcribe(voice(llm.base_url, delays))
    assert transcript.text == "At last."
    assert len(llm.calls) == 2 and len(delays) == 1
    assert llm.calls[0].files["file"].data == llm.calls[1].files["file"].data == VOICE_NOTE


async def test_provider_errors_give_up_after_the_attempts(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.fail(500, times=5, error="transcriber down")
    error = await transcribe_error(voice(llm.base_url, delays, attempts=3))
    assert error.kind == "provider" and "transcriber down" in str(error)
    assert len(llm.calls) == 3 and len(delays) == 2  # the gateway's tries only: none of litellm's
    llm.reset()
    llm.fail(503, times=5)
    error = await speak_error(voice(llm.base_url, attempts=2))
    assert error.kind == "provider"
    assert len(llm.calls) == 2


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (400, "bad_request")])
async def test_client_errors_are_not_retried(llm: FakeLLM, status: int, kind: str) -> None:
    delays: list[float] = []
    llm.fail(status, times=3, error="nope")
    error = await transcribe_error(voice(llm.base_url, delays))
    assert (error.kind, len(llm.calls), delays) == (kind, 1, [])
    assert "nope" in str(error)
    llm.reset()
    llm.fail(status, times=3, error="nope")
    error = await speak_error(voice(llm.base_url, delays))
    assert (error.kind, len(llm.calls), delays) == (kind, 1, [])


async def test_rate_limits_honour_retry_after(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.rate_limit(retry_after=2)
    speech = await voice(llm.base_url, delays).speak("Hi.")
    assert speech.voice_note
    assert len(llm.calls) == 2 and delays and delays[0] >= 2.0


async def test_a_stalled_provider_times_out_within_the_deadline(llm: FakeLLM) -> None:
    llm.stall(1.5, times=5)
    started = time.monotonic()
    error = await transcribe_error(
        voice(llm.base_url, attempts=2, attempt_timeout_s=0.2, deadline_s=3.0)
    )
    assert error.kind == "timeout"
    assert len(llm.calls) == 2
    assert time.monotonic() - started < 1.0  # two attempts of 0.2 s, not the stall of 1.5 s


# -- limits, refused before any call ----------------------------------------------------------


async def test_audio_over_25_mb_is_refused_without_a_call(llm: FakeLLM) -> None:
    error = await transcribe_error(voice(llm.base_url), bytes(MAX_AUDIO_BYTES + 1))
    assert isinstance(error, VoiceLimitError) and error.kind == "bad_request"
    assert (
        str(error) == "bad_request: the voice note is 25.0 MB: transcription takes at most 25.0 MB"
    )
    error = await transcribe_error(voice(llm.base_url), b"")
    assert isinstance(error, VoiceLimitError) and "empty" in str(error)
    assert llm.calls == []


async def test_text_over_4096_characters_is_refused_without_a_call(llm: FakeLLM) -> None:
    gw = voice(llm.base_url)
    error = await speak_error(gw, "a" * (MAX_SPEECH_CHARS + 1))
    assert isinstance(error, VoiceLimitError) and error.kind == "bad_request"
    assert "4,097 characters" in str(error) and "at most 4,096" in str(error)
    error = await speak_error(gw, "  \n ")
    assert isinstance(error, VoiceLimitError)
    assert llm.calls == []
    await gw.speak("a" * MAX_SPEECH_CHARS)  # the limit itself is fine
    assert len(llm.calls) == 1


# -- no model, routing ------------------------------------------------------------------------


async def test_without_models_voice_is_not_available(llm: FakeLLM) -> None:
    gw = voice(llm.base_url, stt_model=None, tts_model=None)
    assert (gw.can_transcribe, gw.can_speak) == (False, False)
    assert TEXT_ONLY == "I read text only: please type your message."
    error = await transcribe_error(gw)
    assert error.kind == "bad_request" and "STUDIO_STT_MODEL" in str(error)
    error = await speak_error(gw)
    assert error.kind == "bad_request" and "STUDIO_TTS_MODEL" in str(error)
    assert llm.calls == []
    empty = voice(llm.base_url, stt_model="", tts_model="")  # an empty setting is unset
    assert (empty.can_transcribe, empty.can_speak) == (False, False)
    both = voice(llm.base_url)
    assert (both.can_transcribe, both.can_speak) == (True, True)


async def test_a_base_url_without_v1_also_works(llm: FakeLLM) -> None:
    gw = voice(llm.root_url)
    await transcribe(gw)
    await gw.speak("Hi.")
    assert [call.path for call in llm.calls] == ["/audio/transcriptions", "/audio/speech"]


async def test_the_api_base_is_only_for_openai_models(llm: FakeLLM) -> None:
    # Had the api base been passed along for a non-openai/ model, the request would have
    # reached the fake (every path is recorded); instead it goes to that provider (refused here).
    gw = voice(llm.base_url, stt_model="groq/whisper-large-v3", attempts=1)
    error = await transcribe_error(gw)
    assert "GroqException" in str(error) and "credentials" in str(error)  # no GROQ_API_KEY
    assert llm.calls == []


async def test_without_an_api_base_openai_models_do_not_reach_the_fake(llm: FakeLLM) -> None:
    # No OPENAI_API_KEY: the openai SDK refuses before any request ("Missing credentials"),
    # which litellm reports as a connection error, hence "provider" rather than "auth".
    error = await transcribe_error(voice(None, attempts=1))
    assert error.kind == "provider" and "credentials" in str(error)
    error = await speak_error(voice(None, attempts=1))
    assert error.kind == "provider" and "credentials" in str(error)
    assert llm.calls == []


async def test_an_unreachable_server_is_retried_then_a_provider_error(llm: FakeLLM) -> None:
    delays: list[float] = []
    error = await speak_error(voice(f"http://127.0.0.1:{closed_port()}/v1", delays, attempts=2))
    assert error.kind == "provider"
    assert len(delays) == 1
