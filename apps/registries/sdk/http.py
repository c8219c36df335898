"""HTTP for backends: one client with timeouts, an SSRF guard on every request, and the SDK's errors.

A backend asks its context for ``http`` and calls ``get_json`` or ``stream``; status codes come back as SDK
exceptions (401/403 ``Unauthorized``, 404 ``NotFound``, 429 ``RateLimited`` with ``Retry-After``, 5xx and
network failures ``Unavailable``). Redirects are followed by hand so that each hop is checked against the
network policy too; the client connects to the address the policy vetted (``apps.core.outbound``), so a name
that resolves elsewhere the second time (DNS rebinding) cannot lead it inside. The client makes one attempt:
retrying with backoff is the sync engine's job, for every backend alike.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import httpx

from apps.core.outbound import AddressPolicy, pinned_client
from apps.core.parsing import loads_json
from apps.registries.sdk.errors import (
    InvalidResponse,
    NotFound,
    RateLimited,
    RegistryError,
    Unauthorized,
    Unavailable,
    UnsafeURL,
)

MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024
USER_AGENT = "gpux-portal-registry-sync/1"
CHUNK_SIZE = 1024 * 1024


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


@dataclass(frozen=True)
class NetworkPolicy(AddressPolicy):
    """Where backends may connect. Public addresses only, unless a host or network is allow-listed.

    ``allowed`` holds host names ("mlflow.internal") and networks ("10.20.0.0/16", "127.0.0.1/32").
    Every address a host name resolves to must pass, so a name that points at a private address is refused
    like the address itself. The portal's ``AddressPolicy`` (``apps.core.outbound``), refusing with the SDK's
    ``UnsafeURL``; connections go to the vetted address (``PinnedTransport``), never to a second lookup's answer.
    """

    allowed: tuple[str, ...] = ()
    # The setting an operator changes to allow-list more, named in the refusal.
    setting: str = "GPUX_REGISTRY_ALLOWED_NETWORKS"
    purpose: str = "registries"

    refusal: ClassVar[type[Exception]] = UnsafeURL


@dataclass
class HttpClient:
    """A small HTTP client for backends: GET (and POST for APIs that need it) with SSRF checks and SDK errors."""

    policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    timeout: float = DEFAULT_TIMEOUT
    headers: dict[str, str] = field(default_factory=dict)
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    # TLS verification: True (the system's CAs), or an ``ssl.SSLContext`` that trusts a private CA.
    verify: ssl.SSLContext | bool = True
    _client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            # Every request, each redirect hop included, is vetted by the policy and sent to the vetted address.
            self._client = pinned_client(
                self.policy,
                verify=self.verify,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT, **self.headers},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _send(self, method: str, url: str, *, stream: bool, **kwargs: Any) -> httpx.Response:
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            # No check here: the client's transport vets this hop's URL as it connects (one lookup, pinned).
            try:
                request = self.client.build_request(method, url, **kwargs)
                if _origin(url) != origin:
                    # Credentials are for the registry's own origin: a redirect elsewhere (a presigned bucket
                    # URL, a CDN) must not carry them along.
                    for header in ("authorization", "cookie", "proxy-authorization"):
                        request.headers.pop(header, None)
                response = self.client.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                raise Unavailable(f"{urlsplit(url).netloc} did not answer in time ({type(exc).__name__}).") from exc
            except httpx.HTTPError as exc:
                raise Unavailable(f"{urlsplit(url).netloc} could not be reached: {exc}") from exc
            if response.is_redirect and "location" in response.headers:
                response.close()
                url = urljoin(url, response.headers["location"])
                kwargs.pop("params", None)
                if response.status_code in (301, 302, 303):
                    method, kwargs = "GET", {k: v for k, v in kwargs.items() if k in ("headers",)}
                continue
            self._raise_for_status(response, url)
            return response
        raise InvalidResponse(f"More than {MAX_REDIRECTS} redirects from {urlsplit(url).netloc}.")

    @staticmethod
    def _raise_for_status(response: httpx.Response, url: str) -> None:
        status = response.status_code
        if status < 400:
            return
        where = urlsplit(url).netloc
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        response.close()
        if status in (401, 403):
            raise Unauthorized(f"{where} refused the credentials (HTTP {status}).")
        if status in (404, 410):
            raise NotFound(f"{where} has nothing at {urlsplit(url).path or '/'} (HTTP {status}).")
        if status == 429:
            raise RateLimited(f"{where} is rate limiting (HTTP 429).", retry_after=retry_after)
        if status >= 500:
            raise Unavailable(f"{where} answered a server error (HTTP {status}).", retry_after=retry_after)
        raise InvalidResponse(f"{where} answered HTTP {status}.")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The whole response (read into memory): for API calls. Bodies over ``max_json_bytes`` are refused."""
        response = self._send(method, url, stream=True, **kwargs)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > self.max_json_bytes:
                    raise InvalidResponse(f"{urlsplit(url).netloc} answered more than {self.max_json_bytes} bytes.")
        except httpx.HTTPError as exc:
            raise Unavailable(f"{urlsplit(url).netloc} broke off the answer: {exc}") from exc
        finally:
            response.close()
        response._content = bytes(body)
        return response

    def head(self, url: str, **kwargs: Any) -> dict[str, str]:
        """The headers of ``url`` (after redirects), lower-cased names: ETag, Last-Modified, Content-Length..."""
        response = self._send("HEAD", url, stream=True, **kwargs)
        response.close()
        return {name.lower(): value for name, value in response.headers.items()}

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.json_of(self.request("GET", url, **kwargs), url)

    def post_json(self, url: str, payload: Any, **kwargs: Any) -> Any:
        return self.json_of(self.request("POST", url, json=payload, **kwargs), url)

    @staticmethod
    def json_of(response: httpx.Response, url: str) -> Any:
        try:
            return loads_json(response.content)  # nesting bounded, text checked: a remote server is input too
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidResponse(f"{urlsplit(url).netloc} answered malformed JSON: {exc}") from None

    def stream(self, url: str, *, chunk_size: int = CHUNK_SIZE, **kwargs: Any) -> Iterator[bytes]:
        """The body as chunks, never all in memory. Errors while reading become ``Unavailable``."""
        response = self._send("GET", url, stream=True, **kwargs)
        try:
            yield from response.iter_bytes(chunk_size)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{urlsplit(url).netloc} broke off the download: {exc}") from exc
        finally:
            response.close()

    def iter_lines(self, url: str, **kwargs: Any) -> Iterator[str]:
        """The body line by line, streamed: for line-delimited indexes of any length."""
        response = self._send("GET", url, stream=True, **kwargs)
        try:
            yield from response.iter_lines()
        except httpx.HTTPError as exc:
            raise Unavailable(f"{urlsplit(url).netloc} broke off the answer: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise InvalidResponse(f"{urlsplit(url).netloc} sent text that is not UTF-8: {exc}") from None
        finally:
            response.close()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port


def read_all(chunks: Iterable[bytes]) -> bytes:
    """Every chunk joined (for small files and tests)."""
    return b"".join(chunks)


__all__ = ["HttpClient", "NetworkPolicy", "RegistryError", "parse_retry_after", "read_all"]
