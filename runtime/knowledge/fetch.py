"""Fetch a web page or file as a knowledge source, refusing private network addresses
(`runtime.net.download`: each hop's host is checked and the request pinned to the checked
address; redirects are followed by hand, each target checked the same way).
"""

from __future__ import annotations

import asyncio

import httpx

from runtime.knowledge.extract import (
    MAX_SOURCE_BYTES,
    Document,
    KnowledgeInputError,
    extract,
    kind_from_content_type,
    kind_from_name,
)
from runtime.net import DownloadError, download

MAX_REDIRECTS = 5


async def fetch_url(
    url: str,
    *,
    client: httpx.AsyncClient,
    allow_private: bool = False,
    max_bytes: int = MAX_SOURCE_BYTES,
    timeout_s: float = 15.0,
) -> Document:
    """Download `url` and extract its text; `timeout_s` bounds the whole fetch, redirects included.

    The kind comes from the Content-Type header, then the path's extension. The document is named
    after the host and the last path segment ("example.com/refund-policy").
    """
    try:
        final, content_type, body = await download(
            client,
            url,
            allow_private=allow_private,
            max_bytes=max_bytes,
            timeout_s=timeout_s,
            max_redirects=MAX_REDIRECTS,
        )
    except DownloadError as exc:
        raise KnowledgeInputError(str(exc)) from None
    return await asyncio.to_thread(
        extract,
        name=_document_name(final),
        content=body,
        content_type=content_type,
        max_bytes=max_bytes,
        kind=kind_from_content_type(content_type) or kind_from_name(final.path),
    )


def _document_name(url: httpx.URL) -> str:
    segments = [segment for segment in url.path.split("/") if segment]
    return f"{url.host}/{segments[-1]}" if segments else url.host
