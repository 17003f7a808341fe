"""The small interface every provider adapter implements, and its failure vocabulary.

Adapters turn one HTTP status check into either a `PollResult` or a
`ProviderError`. The polling core never looks at provider-specific fields: it
only needs the normalized status, the provider's own status word, a payload to
store, and — for failures — whether trying again can help.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.domain.statuses import VerificationStatus


@dataclass(frozen=True)
class PollResult:
    """What one successful status check said."""

    status: VerificationStatus
    provider_status: str
    # The provider's whole answer (may hold personal data: stored in the
    # database only, never logged, never put into events).
    payload: dict[str, Any]
    # Adapter-extracted, non-personal details worth keeping next to the payload
    # (e.g. gu1's decision summary and warnings, Bank131's error code).
    summary: dict[str, Any] = field(default_factory=dict)
    # Machine-readable reason for decisions that came as an error (Bank131).
    error_code: str | None = None
    # Another provider-side id this answer points at (Bank131 already_exists).
    related_external_id: str | None = None


class ProviderError(Exception):
    """A status check that did not produce a usable answer.

    `code` is a short machine-readable word (timeout, rate_limited, server_error,
    auth_failed, not_found, malformed_response, unknown_status, ...). It is safe
    to log and to store: it never carries credentials or personal data.
    """

    permanent: bool = False

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        provider_status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after
        self.provider_status = provider_status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class TransientProviderError(ProviderError):
    """Trying again later can help: timeout, connection error, 5xx, 429, unknown status."""

    permanent = False


class PermanentProviderError(ProviderError):
    """Trying again will not help by itself: 404, 401/403, malformed answer, bad signature."""

    permanent = True


class ProviderConfigurationError(Exception):
    """A provider is used without the base URL or credentials it needs."""


class ProviderAdapter(Protocol):
    """One provider's status check.

    The concrete adapters define `validate_external_id` as a classmethod, so
    tracking can validate a request through `get_adapter_class(name)` on a
    process that has no credentials for that provider.
    """

    name: str
    # The type stored when an app tracks a verification without one (None: the
    # provider has no verification types).
    default_verification_type: str | None

    def validate_external_id(self, external_id: str, verification_type: str | None) -> None:
        """Raise ValueError when the id cannot be a valid id at this provider."""

    def fetch_status(self, external_id: str, verification_type: str | None) -> PollResult:
        """Ask the provider once; raise ProviderError when there is no usable answer."""
