"""Outbound HTTP to addresses people enter (registries, webhooks, identity-provider metadata, anything that
fetches): every address is vetted against an ``AddressPolicy``, and the connection goes to the address that was
vetted, never to whatever a second lookup of the name answers.

Checking a URL and then letting the HTTP library resolve the name again leaves a window: a name whose DNS answers a
public address to the check and ``127.0.0.1`` to the connection (DNS rebinding) reaches the inside. Here a name is
resolved once per request, by ``resolve``, and ``PinnedTransport`` connects to one of the addresses that lookup
returned and the policy allowed, while the request keeps the name: the ``Host`` header, TLS SNI and the
certificate check are for the name, not the address. Every request a client sends goes through the transport, so
each redirect hop is vetted and pinned the same way.

Use ``pinned_client(policy)`` (or ``PinnedTransport`` as an ``httpx.Client``'s transport) for any fetch of a
user-given URL::

    policy = AddressPolicy(allowed=tuple(settings.SOMETHING_ALLOWED_NETWORKS), setting="GPUX_SOMETHING_...",
                           purpose="identity-provider metadata")
    policy.check_url(url, field="metadata_url")  # when the URL is saved: a clear 400
    with pinned_client(policy, timeout=10) as client:  # when it is fetched: vetted and pinned
        client.get(url)

Environment proxies (``HTTPS_PROXY``) are not used by these clients: a proxy resolves names itself, which is the
second lookup this module exists to avoid.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx


class UnsafeAddress(Exception):
    """A URL points somewhere the portal may not connect to; ``field`` names the setting or input it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class Unresolvable(OSError):
    """An allow-listed host name does not resolve (now): a network failure, not a refusal."""


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, each once, in the resolver's order. The only name lookup of outbound
    HTTP: what it answers is what the policy vets and what the transport connects to."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class Target:
    """A vetted URL: its scheme, host name (IDNA-encoded), port, and the addresses a connection may use."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class AddressPolicy:
    """Where outbound requests may connect: public addresses only, unless a host or network is allow-listed.

    ``allowed`` holds host names ("mlflow.internal") and networks ("10.20.0.0/16", "127.0.0.1/32"). Every address a
    host name resolves to must pass, so a name that points at a private address is refused like the address
    itself. ``setting`` and ``purpose`` name, in a refusal, what the operator changes and for what.
    """

    allowed: tuple[str, ...] = ()
    setting: str = "the allow-list"
    purpose: str = "the portal"

    # What a refusal raises (a subclass may raise its own error, with the same (field, message) arguments).
    refusal: ClassVar[type[Exception]] = UnsafeAddress

    def _networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        networks = []
        for entry in self.allowed:
            with contextlib.suppress(ValueError):
                networks.append(ipaddress.ip_network(entry, strict=False))
        return networks

    def _host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in {entry.lower().rstrip(".") for entry in self.allowed}

    def address_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        if any(ip in network for network in self._networks()):
            return True
        return ip.is_global and not ip.is_multicast

    def _parts(self, url: str, field: str) -> tuple[str, str, int]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise self.refusal(field, f"Only http:// and https:// URLs are allowed, not “{parts.scheme or url}”.")
        host = parts.hostname
        if not host:
            raise self.refusal(field, "The URL has no host.")
        if parts.username or parts.password:
            raise self.refusal(field, "Put credentials in the credential fields, not in the URL.")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise self.refusal(field, "The URL's port is not a number between 0 and 65535.") from None
        return parts.scheme, host, port

    def vet(self, url: str, *, field: str = "url") -> Target:
        """Resolve ``url``'s host once and return the addresses a connection may use: the refusal (naming
        ``field``) when the URL or any address is not allowed; ``Unresolvable`` when an allow-listed name does not
        resolve."""
        scheme, host, port = self._parts(url, field)
        by_name = self._host_allowed(host)
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            if by_name:
                raise Unresolvable(f"“{host}” does not resolve: {exc}") from exc
            raise self.refusal(field, f"The host “{host}” does not resolve.") from None
        if not addresses:
            raise self.refusal(field, f"The host “{host}” does not resolve.")
        if not by_name:
            for address in addresses:
                if not self.address_allowed(address):
                    raise self.refusal(
                        field,
                        f"“{host}” resolves to {address}, a private, loopback or link-local address; the operator "
                        f"must allow-list it ({self.setting}) before {self.purpose} may use it.",
                    )
        return Target(scheme, host, port, tuple(addresses))

    def check_url(self, url: str, *, field: str = "url") -> None:
        """The refusal naming ``field`` unless ``url`` is http(s) and every address it resolves to may be used (for
        checking a URL when it is entered; an allow-listed host name passes without a lookup)."""
        _scheme, host, _port = self._parts(url, field)
        if self._host_allowed(host):
            return
        self.vet(url, field=field)


def _url_host(address: str) -> str:
    return address.split("%", 1)[0]


class PinnedTransport(httpx.HTTPTransport):
    """An httpx transport that vets each request's URL with ``policy`` and connects to a vetted address.

    The request sent keeps its ``Host`` header, and TLS is negotiated for the URL's name (SNI and certificate
    verification through httpcore's ``sni_hostname``), so virtual hosts and certificates work as for any client.
    When an address refuses the connection, the next vetted one is tried.
    """

    def __init__(self, policy: AddressPolicy, *, field: str = "url", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.field = field

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            target = self.policy.vet(str(request.url), field=self.field)
        except Unresolvable as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        name = request.url.raw_host.decode("ascii")
        failure: httpx.ConnectError | None = None
        for address in target.addresses:
            pinned = httpx.Request(
                request.method,
                request.url.copy_with(host=_url_host(address)),
                headers=request.headers,  # the Host header was set from the name when the request was built
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": name},
            )
            try:
                return super().handle_request(pinned)
            except httpx.ConnectError as exc:
                failure = exc
        assert failure is not None  # vet() returns at least one address
        raise failure


def pinned_client(
    policy: AddressPolicy,
    *,
    field: str = "url",
    verify: ssl.SSLContext | bool = True,
    **client_kwargs: Any,
) -> httpx.Client:
    """An ``httpx.Client`` whose every request (each redirect hop too) is vetted by ``policy`` and pinned to the
    vetted address. Redirects are not followed unless ``follow_redirects=True`` is passed; environment proxies are
    never used."""
    client_kwargs.setdefault("follow_redirects", False)
    return httpx.Client(transport=PinnedTransport(policy, field=field, verify=verify), trust_env=False, **client_kwargs)


__all__ = ["AddressPolicy", "PinnedTransport", "Target", "Unresolvable", "UnsafeAddress", "pinned_client", "resolve"]
