"""Where an owner's webhook may not go: loopback, private, link-local and other special
addresses (server-side request forgery). Checked at add-webhook (`check`), and enforced at
every send by the connect itself (`connect_allowed`): the address checked is the address
connected to, so a name that resolves to a public address for the check and to a private
one a moment later (DNS rebinding) gets nothing sent to it."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL = 2000


class Refused(ValueError):
    """The address is not one an owner's webhook may reach."""

    def __init__(self, address: str):
        super().__init__("must not point at a loopback, private or link-local address"
                         f" ({address})")


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
    if literal(parts.hostname) is None:
        try:  # what a resolver would be asked (an empty label or one over 63 characters fails)
            parts.hostname.encode("idna")
        except UnicodeError:
            raise ValueError("has an invalid host name") from None
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


def connect_allowed(host: str, port: int, timeout=None, source_address=None,
                    socket_options=None) -> socket.socket:
    """A TCP connection to the first of `host`'s addresses that an owner's webhook may
    reach. `Refused` when every address it resolves to is forbidden; the last connect
    error when none of the allowed ones answers; `socket.gaierror` when it does not
    resolve."""
    refused, error = [], None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        if forbidden_ip(sockaddr[0]):
            refused.append(sockaddr[0])
            continue
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if isinstance(timeout, (int, float)):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    if error is not None:
        raise error
    raise Refused(refused[0])


def check(url: str) -> None:
    """Refuse a URL whose host is, or resolves to, an address an owner may not reach."""
    host, port = host_and_port(url)
    ip = literal(host)
    addresses = [ip] if ip else resolve(host, port)
    bad = [a for a in addresses if forbidden_ip(a)]
    if bad:
        raise Refused(bad[0])
