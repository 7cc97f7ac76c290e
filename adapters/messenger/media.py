"""Files a Page sends: the Send API takes an upload (`filedata`) as an image, audio, video or
any other file, of up to 25 MB. An image Messenger shows inline must be a JPEG, PNG or GIF;
anything else goes as a file the person downloads, so no type is refused."""

from __future__ import annotations

from adapters.meta.media import Upload, media_type, upload
from runtime.messages import Attachment

MAX_BYTES = 25 * 1024 * 1024
_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif"})


def upload_of(file: Attachment) -> Upload:
    """How `file` goes to Messenger; `SendError` (for good) when it is over the limit."""
    mime = media_type(file) or "application/octet-stream"
    if file.data is None:  # text, whatever it is called
        mime = "text/plain"
    if mime in _IMAGES:
        kind = "image"
    elif mime.startswith(("audio/", "video/")):
        kind = mime.split("/", 1)[0]
    else:
        kind = "file"
    return upload(file, kind=kind, mime=mime, limit=MAX_BYTES, taken="Messenger takes files")
