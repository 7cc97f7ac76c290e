"""Fetch a web page or file as a knowledge source, refusing private network addresses
(`runtime.net`: each hop's host is checked and the request pinned to the checked address).
Redirects are followed by hand, each target checked the same way.
"""

from __future__ import annotations

import asyncio

import httpx

from runtime.knowledge.extract import (
    MAX_SOURCE_BYTES,
    Document,
    KnowledgeInputError,
    extract,
    format_size,
    kind_from_content_type,
    kind_from_name,
)
from runtime.net import UnsafeUrlError, parse_url, pinned_request, transport_reason

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
        async with asyncio.timeout(timeout_s):
            final, content_type, body = await _download(
                url,
                client=client,
                allow_private=allow_private,
                max_bytes=max_bytes,
                timeout_s=timeout_s,
            )
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise KnowledgeInputError(f"{url} timed out after {timeout_s:g} s") from exc
    except httpx.RequestError as exc:  # connection, protocol (a bad Location too), decoding
        raise KnowledgeInputError(f"{url} could not be reached ({transport_reason(exc)})") from exc
    except UnsafeUrlError as exc:
        raise KnowledgeInputError(str(exc)) from None
    return await asyncio.to_thread(
        extract,
        name=_document_name(final),
        content=body,
        content_type=content_type,
        max_bytes=max_bytes,
        kind=kind_from_content_type(content_type) or kind_from_name(final.path),
    )


async def _download(
    url: str, *, client: httpx.AsyncClient, allow_private: bool, max_bytes: int, timeout_s: float
) -> tuple[httpx.URL, str | None, bytes]:
    """The final URL, its Content-Type and its body, after at most MAX_REDIRECTS redirects."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target = parse_url(current)
        request = await pinned_request(
            client, "GET", target, allow_private=allow_private, timeout_s=timeout_s, shown=current
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            if response.is_redirect:
                current = str(target.join(response.headers["location"]))
                continue
            if not response.is_success:
                raise KnowledgeInputError(f"{current} answered {response.status_code}")
            body = await _read(current, response, max_bytes)
            return target, response.headers.get("content-type"), body
        finally:
            await response.aclose()
    raise KnowledgeInputError(f"{url} redirects more than {MAX_REDIRECTS} times")


async def _read(shown: str, response: httpx.Response, max_bytes: int) -> bytes:
    """The (decoded) body, refused as soon as it or its declared length is over `max_bytes`."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise KnowledgeInputError(
            f"{shown} is {format_size(int(declared))}; the limit is {format_size(max_bytes)}"
        )
    body = bytearray()
    async for part in response.aiter_bytes():
        body += part
        if len(body) > max_bytes:
            raise KnowledgeInputError(f"{shown} is over the {format_size(max_bytes)} limit")
    return bytes(body)


def _document_name(url: httpx.URL) -> str:
    segments = [segment for segment in url.path.split("/") if segment]
    return f"{url.host}/{segments[-1]}" if segments else url.host
