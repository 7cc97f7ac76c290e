"""Outbound requests to addresses users give (knowledge URLs, HTTP tools, MCP servers), refusing
private network addresses.

The risk is server-side request forgery: a user pointing the service at 127.0.0.1, the LAN or a
cloud metadata address. Unless private addresses are allowed, the host is resolved without
blocking, every address it resolves to must be public, and the request is then sent to the first
checked address itself (the Host header and TLS SNI keep the name, so certificates are still
verified against it). A DNS answer that changes between check and connect (rebinding) therefore
cannot slip through. Callers follow redirects by hand and check each target the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrlError(ValueError):
    """A URL that may not be requested: malformed, not http(s), unknown host or a private
    address. The message is one line a person can act on."""


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
