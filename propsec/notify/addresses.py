"""Where an owner's webhook may not go: loopback, private, link-local and other special
addresses (server-side request forgery). Checked at add-webhook and again before each send,
since a name may resolve elsewhere later (DNS rebinding)."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL = 2000


class Refused(ValueError):
    """The address is not one an owner's webhook may reach."""


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.username or parts.password:
        raise ValueError("must not carry a user name or password")
    return parts.hostname, port


def forbidden_ip(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses; [] when the name does not resolve (now)."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    except (socket.gaierror, UnicodeError, OSError):
        return []


def check(url: str) -> None:
    """Refuse a URL whose host is, or resolves to, an address an owner may not reach."""
    host, port = host_and_port(url)
    ip = literal(host)
    addresses = [ip] if ip else resolve(host, port)
    bad = [a for a in addresses if forbidden_ip(a)]
    if bad:
        raise Refused(f"must not point at a loopback, private or link-local address ({bad[0]})")
