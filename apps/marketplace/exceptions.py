"""Errors of the catalog that are not a plain 400: each carries its HTTP status and a stable code."""

from __future__ import annotations

from rest_framework import exceptions, status


class QuotaExceeded(exceptions.APIException):
    """The organization's storage quota cannot take the file: 403 naming the quota (as every quota refusal that
    waiting does not cure), nothing stored."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "quota_exceeded"
    default_detail = "This upload would exceed the organization's storage quota."


class UploadOffsetMismatch(exceptions.APIException):
    """A chunk was sent at another offset than the session's: 409 with the offset the server expects."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "offset_mismatch"
    default_detail = "The chunk's offset does not match the upload's."

    def __init__(self, *, expected: int, given: int) -> None:
        super().__init__(f"This upload is at offset {expected}, not {given}: resume from {expected}.")
        self.expected = expected

    def add_to(self, response) -> None:
        """Name the expected offset in the body (``expected_offset``) and the ``Upload-Offset`` header."""
        if isinstance(response.data, dict):
            response.data["expected_offset"] = self.expected
        response["Upload-Offset"] = str(self.expected)


class UploadGone(exceptions.APIException):
    """The upload session expired, was aborted or completed: 410."""

    status_code = status.HTTP_410_GONE
    default_code = "upload_gone"
    default_detail = "This upload session is no longer open."


class VersionYanked(exceptions.APIException):
    """A yanked version asked for by someone who had not pinned it: 410 with the reason."""

    status_code = status.HTTP_410_GONE
    default_code = "version_yanked"
    default_detail = "This version was yanked."


class UpstreamFailed(exceptions.APIException):
    """A file the version lists upstream could not be fetched from its registry: 502."""

    status_code = 502
    default_code = "upstream_failed"
    default_detail = "The file's registry could not deliver it."


class ManifestRefused(exceptions.APIException):
    """A refusal of the gpux.yml routes that is not a 400 (409: cannot be exported yet; 413: too large); the body
    also names the field it concerns, as a 400 would."""

    def __init__(self, detail: str, *, field: str, code: str, status_code: int) -> None:
        super().__init__(detail, code)
        self.status_code = status_code
        self.field = field

    def add_to(self, response) -> None:
        if isinstance(response.data, dict):
            response.data[self.field] = [str(self.detail)]
