"""Outbound requests to addresses users give (knowledge URLs, HTTP tools, MCP servers), refusing
private network addresses.

The risk is server-side request forgery: a user pointing the service at 127.0.0.1, the LAN or a
cloud metadata address. Unless private addresses are allowed, the host is resolved without
blocking, every address it resolves to must be public, and the request is then sent to the first
checked address itself (the Host header and TLS SNI keep the name, so certificates are still
verified against it). A DNS answer that changes between check and connect (rebinding) therefore
cannot slip through. Redirects are followed by hand (`open_followed`), each target checked the
same way; bodies are read up to a size limit (`read_capped`); `download` does both for a GET.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}
_BODY_OPTIONS = ("content", "data", "files", "json")  # what a redirect to GET leaves behind

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrlError(ValueError):
    """A URL that may not be requested: malformed, not http(s), unknown host or a private
    address. The message is one line a person can act on."""


class DownloadError(ValueError):
    """A URL that could not be read (unreachable, timed out, an error status, too many
    redirects, too big). The message is one line a person can act on."""


class RedirectError(DownloadError):
    """More redirects than allowed."""


class TooLargeError(DownloadError):
    """A body over the size limit; `size` is what it declared or what was read before it was
    cut off."""

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


def parse_url(url: str, *, verb: str = "added") -> httpx.URL:
    """`url` parsed, or `UnsafeUrlError` unless it is an http(s) URL naming a host."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsafeUrlError(f"{url} is not a valid URL") from exc
    if parsed.scheme not in DEFAULT_PORTS:
        raise UnsafeUrlError(f"{url}: only http and https URLs can be {verb}")
    if not parsed.host:
        raise UnsafeUrlError(f"{url} is not a valid URL: it names no host")
    return parsed


async def pinned_request(
    client: httpx.AsyncClient,
    method: str,
    target: httpx.URL,
    *,
    allow_private: bool,
    timeout_s: float,
    shown: str | None = None,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> httpx.Request:
    """A request for `target`; unless private addresses are allowed, aimed at its checked
    public address (`UnsafeUrlError` otherwise). `options` go to `build_request` (json, params)."""
    if allow_private:
        return client.build_request(method, target, headers=headers, timeout=timeout_s, **options)
    address = await public_address(target, shown or str(target))
    return client.build_request(
        method,
        target.copy_with(host=address),
        headers={**(headers or {}), "Host": target.netloc.decode("ascii")},
        extensions={"sni_hostname": target.raw_host.decode("ascii")},
        timeout=timeout_s,
        **options,
    )


@dataclass(frozen=True, slots=True)
class Opened:
    """A response once its redirects are followed: the URL that answered (`shown` as it was
    written) and the response, streamed: the caller reads and closes it."""

    url: httpx.URL
    shown: str
    response: httpx.Response


async def open_followed(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    allow_private: bool,
    timeout_s: float,
    max_redirects: int,
    stay_on: httpx.URL | None = None,
    verb: str = "added",
    headers: dict[str, str] | None = None,
    **options: Any,
) -> Opened:
    """Send `method` to `url`, following at most `max_redirects` redirects by hand, each target
    checked like the first (`UnsafeUrlError`); with `stay_on`, every target must be on that
    service (`same_service`). A 303, or a 301/302 after a POST, goes on as a GET without the
    body, as browsers do. `RedirectError` past the limit."""
    current = url
    for _ in range(max_redirects + 1):
        target = parse_url(current, verb=verb)
        if stay_on is not None and not same_service(stay_on, target):
            raise UnsafeUrlError(
                f"{current} is not on {stay_on.host}: only {stay_on.host} is called"
            )
        request = await pinned_request(
            client,
            method,
            target,
            allow_private=allow_private,
            timeout_s=timeout_s,
            shown=current,
            headers=headers,
            **options,
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        if not response.is_redirect:
            return Opened(target, current, response)
        await response.aclose()
        current = str(target.join(response.headers["location"]))
        status = response.status_code
        if method != "GET" and (status == 303 or (status in (301, 302) and method == "POST")):
            method = "GET"
            options = {k: v for k, v in options.items() if k not in _BODY_OPTIONS}
    raise RedirectError(f"{url} redirects more than {max_redirects} times")


def same_service(origin: httpx.URL, target: httpx.URL) -> bool:
    """Whether `target` is on `origin`'s host: the same scheme and port, or http moved up to
    https (on its default port or the same one)."""
    if target.host != origin.host or {origin.scheme, target.scheme} - DEFAULT_PORTS.keys():
        return False
    if target.scheme == origin.scheme:
        return _port(target) == _port(origin)
    upgraded = origin.scheme == "http" and target.scheme == "https"
    return upgraded and target.port in (None, origin.port)


def _port(url: httpx.URL) -> int:
    return url.port or DEFAULT_PORTS[url.scheme]


async def read_capped(response: httpx.Response, max_bytes: int, *, shown: str) -> bytes:
    """The (decoded) body, refused (`TooLargeError`) as soon as it or its declared length is
    over `max_bytes`: nothing more is read."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLargeError(
            too_big(shown, int(declared), max_bytes),
            size=int(declared),
        )
    body = bytearray()
    async for part in response.aiter_bytes():
        body += part
        if len(body) > max_bytes:
            raise TooLargeError(
                f"{shown} is over the {format_size(max_bytes)} limit", size=len(body)
            )
    return bytes(body)


async def download(
    client: httpx.AsyncClient,
    url: str,
    *,
    allow_private: bool,
    max_bytes: int,
    timeout_s: float,
    max_redirects: int = 5,
) -> tuple[httpx.URL, str | None, bytes]:
    """GET `url`: the URL that answered, its Content-Type and its body. `timeout_s` bounds the
    whole of it, redirects included; every failure is a one-line `DownloadError`."""
    try:
        async with asyncio.timeout(timeout_s):
            opened = await open_followed(
                client,
                "GET",
                url,
                allow_private=allow_private,
                timeout_s=timeout_s,
                max_redirects=max_redirects,
            )
            try:
                if not opened.response.is_success:
                    raise DownloadError(f"{opened.shown} answered {opened.response.status_code}")
                body = await read_capped(opened.response, max_bytes, shown=opened.shown)
                return opened.url, opened.response.headers.get("content-type"), body
            finally:
                await opened.response.aclose()
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise DownloadError(f"{url} timed out after {timeout_s:g} s") from exc
    except httpx.RequestError as exc:  # connection, protocol (a bad Location too), decoding
        raise DownloadError(f"{url} could not be reached ({transport_reason(exc)})") from exc
    except UnsafeUrlError as exc:
        raise DownloadError(str(exc)) from None


async def public_address(target: httpx.URL, shown: str) -> str:
    """The first address the host resolves to, once every one of them has proved public."""
    addresses = await _resolve(target, shown)
    for address in addresses:
        if not is_public(address):
            raise UnsafeUrlError(
                f"{shown} points to a private address ({address}): "
                "only public web addresses can be reached"
            )
    return str(addresses[0])


async def _resolve(target: httpx.URL, shown: str) -> list[_IPAddress]:
    try:
        return [ipaddress.ip_address(target.host)]
    except ValueError:  # a name, not an address literal
        pass
    port = target.port or DEFAULT_PORTS[target.scheme]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.raw_host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeUrlError(f"{shown}: the host {target.host} was not found") from exc
    if not infos:
        raise UnsafeUrlError(f"{shown}: the host {target.host} was not found")
    return [ipaddress.ip_address(str(info[4][0])) for info in infos]


def is_public(address: _IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo) is judged as the IPv4 it reaches.
        if address.ipv4_mapped:
            return is_public(address.ipv4_mapped)
        carried = [address.sixtofour, *(address.teredo or ())]
        if any(inner is not None and not is_public(inner) for inner in carried):
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


def transport_reason(exc: Exception) -> str:
    """One line about a transport error (some have an empty or multi-line message)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def format_size(size: int) -> str:
    """A byte count for people: "25.3 MB", "20 MB", "512 bytes"."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def too_big(what: str, size: int, limit: int) -> str:
    """ "X is 25.3 MB; the limit is 20 MB", never "is 1 MB; the limit is 1 MB" for a size that
    rounds to the limit."""
    shown = format_size(size)
    if shown == format_size(limit):
        shown = f"more than {shown}"
    return f"{what} is {shown}; the limit is {format_size(limit)}"
