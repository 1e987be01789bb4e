"""Outbound URLs that users choose (group-robot webhooks) must not reach the server's own network.

A schedule's robot URL is fetched by the server: without this check a user could make it POST to
http://127.0.0.1:…, a cloud metadata service (169.254.169.254) or a LAN host (SSRF). Unless
private URLs are allowed by configuration, a URL must be https and its host must resolve only to
public (globally routable) addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from avatarbot.errors import InvalidInput

RESOLVE_TIMEOUT_S = 3.0
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


class UnsafeUrl(InvalidInput):
    """The URL points to a private network (or is not https) and private URLs are not allowed."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return ip.is_global and not ip.is_multicast


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def _static_check(url: str) -> str:
    """The host of an https URL, refusing IP literals and names that are private by definition."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise UnsafeUrl(
            "target url must use https (AVATARBOT_SCHEDULER__ALLOW_PRIVATE_URLS=true allows "
            "http and private hosts)"
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeUrl("target url has no host")
    literal = _literal_ip(host)
    if literal is not None and not is_public_address(literal):
        raise UnsafeUrl("target url points to a private or local address")
    single_label = "." not in host and literal is None  # "intranet", "redis": LAN names
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or single_label:
        raise UnsafeUrl("target url points to a private or local host name")
    return host


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(
        loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
    )
    return [str(info[4][0]) for info in infos]


async def check_outbound_url(url: str, *, allow_private: bool, must_resolve: bool) -> None:
    """Raise UnsafeUrl unless `url` is https and every address its host resolves to is public.

    `must_resolve` False (when a schedule is saved) lets a name that does not resolve *now*
    pass; True (right before each delivery) refuses it, so a later DNS change cannot point a
    stored URL at a private address.
    """
    if allow_private:
        return
    host = _static_check(url)
    if _literal_ip(host) is not None:
        return
    port = urlsplit(url).port or 443
    try:
        addresses = await _resolve(host, port)
    except (OSError, TimeoutError, UnicodeError) as exc:
        if must_resolve:
            raise UnsafeUrl("target url host does not resolve") from exc
        return
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise UnsafeUrl("target url points to a private or local address")
