"""Files WhatsApp takes from a business: by MIME type, the kind of message that carries one and
its size limit (Cloud API's supported media). A text file of any other type (an export, a
spec) goes as the plain text it is; bytes of any other type are refused before an upload."""

from __future__ import annotations

from adapters.meta.media import Upload, media_type, upload
from runtime.channel import SendError
from runtime.messages import Attachment

MB = 1024 * 1024
_AUDIO = ("audio", 16 * MB)
_DOCUMENT = ("document", 100 * MB)
_IMAGE = ("image", 5 * MB)
_VIDEO = ("video", 16 * MB)
SUPPORTED: dict[str, tuple[str, int]] = {
    "audio/aac": _AUDIO,
    "audio/amr": _AUDIO,
    "audio/mpeg": _AUDIO,
    "audio/mp4": _AUDIO,
    "audio/ogg": _AUDIO,
    "text/plain": _DOCUMENT,
    "application/pdf": _DOCUMENT,
    "application/vnd.ms-powerpoint": _DOCUMENT,
    "application/msword": _DOCUMENT,
    "application/vnd.ms-excel": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _DOCUMENT,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _DOCUMENT,
    "image/jpeg": _IMAGE,
    "image/png": _IMAGE,
    "video/mp4": _VIDEO,
    "video/3gpp": _VIDEO,
}


def upload_of(file: Attachment) -> Upload:
    """How `file` goes to WhatsApp; `SendError` (for good) when WhatsApp takes no such file or
    none that large."""
    mime = media_type(file)
    found = SUPPORTED.get(mime)
    if found is None and file.data is None:  # text, whatever it is called
        mime, found = "text/plain", SUPPORTED["text/plain"]
    if found is None:
        raise SendError(
            f"WhatsApp takes no {mime} files ({file.name} was not sent)", permanent=True
        )
    kind, limit = found
    return upload(file, kind=kind, mime=mime, limit=limit, taken=f"WhatsApp takes {kind} files")
