"""The exceptions a registry backend raises. The sync engine understands these and nothing else.

Anything else a backend raises is a bug in the backend: the sync records it as one (with its type and message)
and goes on, it never takes the worker down.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every error a backend reports. ``message`` is shown to the registry's admins as written."""

    retryable = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotFound(RegistryError):
    """The registry has no such model, version or file."""


class Unauthorized(RegistryError):
    """The registry refused the credentials (wrong, expired, or without the rights needed)."""


class RateLimited(RegistryError):
    """The registry asked to slow down. ``retry_after`` is its ``Retry-After`` in seconds, when it gave one."""

    retryable = True

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message or "The registry is rate limiting requests.")
        self.retry_after = retry_after


class Unavailable(RegistryError):
    """The registry could not be reached, timed out, or answered a server error. Worth retrying later."""

    retryable = True

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message or "The registry is unavailable.")
        self.retry_after = retry_after


class InvalidResponse(RegistryError):
    """The registry answered something that is not what its protocol promises (malformed JSON, a bad field)."""


class ChecksumMismatch(InvalidResponse):
    """A file's bytes do not match the checksum the registry listed for it."""


class ConfigurationError(RegistryError):
    """A parameter is missing or wrong. ``field`` names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnsafeURL(ConfigurationError):
    """A URL points somewhere the portal may not connect to (loopback, private or link-local addresses)."""
