"""The GPUX Portal registry SDK: the public, stable API for registry backends (plugins and built-ins).

Import from here, not from the modules underneath::

    from apps.registries.sdk import RegistryBackend, Parameter, RemoteModel, RemoteVersion, RemoteFile, ModelPage
    from apps.registries.sdk import NotFound, Unauthorized, RateLimited, Unavailable, InvalidResponse

The conformance kit is ``apps.registries.sdk.testing``. See docs/sdk/registry-backends.md.
"""

from apps.registries.sdk.backend import SDK_VERSION, BackendContext, RegistryBackend, find_version
from apps.registries.sdk.discovery import ENTRY_POINT_GROUP, available_backends, backend_class
from apps.registries.sdk.errors import (
    ChecksumMismatch,
    ConfigurationError,
    InvalidResponse,
    NotFound,
    RateLimited,
    RegistryError,
    Unauthorized,
    Unavailable,
    UnsafeURL,
)
from apps.registries.sdk.http import HttpClient, NetworkPolicy, parse_retry_after
from apps.registries.sdk.parameters import Parameter, clean_parameters
from apps.registries.sdk.types import ModelPage, RemoteFile, RemoteModel, RemoteVersion

__all__ = [
    "ENTRY_POINT_GROUP",
    "SDK_VERSION",
    "BackendContext",
    "ChecksumMismatch",
    "ConfigurationError",
    "HttpClient",
    "InvalidResponse",
    "ModelPage",
    "NetworkPolicy",
    "NotFound",
    "Parameter",
    "RateLimited",
    "RegistryBackend",
    "RegistryError",
    "RemoteFile",
    "RemoteModel",
    "RemoteVersion",
    "Unauthorized",
    "Unavailable",
    "UnsafeURL",
    "available_backends",
    "backend_class",
    "clean_parameters",
    "find_version",
    "parse_retry_after",
]
