"""Fetch a web page or file as a knowledge source, refusing private network addresses.

The risk is server-side request forgery: a user pointing the service at 127.0.0.1, the LAN or a
cloud metadata address. Unless private addresses are allowed, each hop's host is resolved without
blocking, every address it resolves to must be public, and the request is then sent to the first
checked address itself (the Host header and TLS SNI keep the name, so certificates are still
verified against it). A DNS answer that changes between check and connect (rebinding) therefore
cannot slip through. Redirects are followed by hand, each target checked the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

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

MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
        raise KnowledgeInputError(f"{url} could not be reached ({_reason(exc)})") from exc
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
        target = _parse(current)
        request = await _request(
            client, target, current, allow_private=allow_private, timeout_s=timeout_s
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


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise KnowledgeInputError(f"{url} is not a valid URL") from exc
    if parsed.scheme not in _DEFAULT_PORTS:
        raise KnowledgeInputError(f"{url}: only http and https URLs can be added")
    if not parsed.host:
        raise KnowledgeInputError(f"{url} is not a valid URL: it names no host")
    return parsed


async def _request(
    client: httpx.AsyncClient,
    target: httpx.URL,
    shown: str,
    *,
    allow_private: bool,
    timeout_s: float,
) -> httpx.Request:
    """A GET for `target`; unless private addresses are allowed, aimed at its checked address."""
    if allow_private:
        return client.build_request("GET", target, timeout=timeout_s)
    address = await _public_address(target, shown)
    return client.build_request(
        "GET",
        target.copy_with(host=address),
        headers={"Host": target.netloc.decode("ascii")},
        extensions={"sni_hostname": target.raw_host.decode("ascii")},
        timeout=timeout_s,
    )


async def _public_address(target: httpx.URL, shown: str) -> str:
    """The first address the host resolves to, once every one of them has proved public."""
    addresses = await _resolve(target, shown)
    for address in addresses:
        if not _is_public(address):
            raise KnowledgeInputError(
                f"{shown} points to a private address ({address}): "
                "only public web addresses can be added"
            )
    return str(addresses[0])


async def _resolve(target: httpx.URL, shown: str) -> list[_IPAddress]:
    try:
        return [ipaddress.ip_address(target.host)]
    except ValueError:  # a name, not an address literal
        pass
    port = target.port or _DEFAULT_PORTS[target.scheme]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.raw_host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise KnowledgeInputError(f"{shown}: the host {target.host} was not found") from exc
    if not infos:
        raise KnowledgeInputError(f"{shown}: the host {target.host} was not found")
    return [ipaddress.ip_address(str(info[4][0])) for info in infos]


def _is_public(address: _IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo) is judged as the IPv4 it reaches.
        if address.ipv4_mapped:
            return _is_public(address.ipv4_mapped)
        carried = [address.sixtofour, *(address.teredo or ())]
        if any(inner is not None and not _is_public(inner) for inner in carried):
            return False
    special = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )
    return address.is_global and not special  # is_global also excludes shared (CGNAT) space


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


def _reason(exc: Exception) -> str:
    """One line about a transport error (some have an empty or multi-line message)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
