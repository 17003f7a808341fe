"""Every error kyc-poller raises, and the public vocabularies of error codes and reasons.

Error codes and transition reasons travel in events, rows and logs: they are a
public contract, so they are enums here and nowhere else spelled as literals.

    KycPollerError
    ├── ConfigurationError            a setting cannot be used (worker start-up, provider set-up)
    │   ├── ProviderConfigurationError   a provider lacks its base URL or credentials
    │   └── KeyMaterialError          an event signing key or key ring cannot be used
    │                                  (worker/domain/signatures.py)
    ├── StorageUnavailableError       the database cannot be reached now; retry (tracking does)
    ├── StorageError                  a database error retrying will not fix (details withheld)
    ├── SchemaNotReady                the database answers but lacks this code's schema
    ├── RequestRejected (ValueError)  an app's request is refused; nothing is stored
    │   ├── UnknownProviderError
    │   ├── InvalidExternalIdError
    │   ├── InvalidVerificationTypeError
    │   ├── TrackingConflictError
    │   └── TrackingCeilingError
    └── ProviderError                 a status check gave no usable answer (`code`: ErrorCode)
        ├── TransientProviderError    trying again later can help
        │   ├── ProviderUnavailableError  the provider as a whole fails: outage or credentials.
        │   │                              Counts for its circuit breaker, never against the row.
        │   └── RateLimitedError      429: slows the provider for the whole fleet
        └── PermanentProviderError    this verification cannot be checked as it is (404,
                                      malformed or oversized answer); bounded, then `failed`
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a poll gave no usable answer (`last_error_code`, and `error_code` in events)."""

    # The provider as a whole (ProviderUnavailableError): breaker material.
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    SERVER_ERROR = "server_error"
    AUTH_FAILED = "auth_failed"
    INVALID_SIGN = "invalid_sign"  # Bank131
    PARTNER_PROJECT_NOT_FOUND = "partner_project_not_found"  # Bank131
    # Transient, this row only.
    RATE_LIMITED = "rate_limited"
    UNKNOWN_STATUS = "unknown_status"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    CIRCUIT_OPEN = "circuit_open"
    PROVIDER_PAUSED = "provider_paused"
    INTERNAL_ERROR = "internal_error"
    # Permanent: bounded by KYC_MAX_PERMANENT_ERRORS, then the verification is `failed`.
    NOT_FOUND = "not_found"
    REQUEST_NOT_FOUND = "request_not_found"  # Bank131
    HTTP_ERROR = "http_error"
    REQUEST_FAILED = "request_failed"
    MALFORMED_RESPONSE = "malformed_response"
    RESPONSE_TOO_LARGE = "response_too_large"
    RESPONSE_TOO_DEEP = "response_too_deep"
    INVALID_EXTERNAL_ID = "invalid_external_id"
    # Decisions that arrive as errors (Bank131), carried by `rejected` events.
    PASSPORT_VALIDATION_FAILURE = "passport_validation_failure"
    INN_VALIDATION_FAILURE = "inn_validation_failure"
    ALREADY_EXISTS = "already_exists"


PROVIDER_WIDE_CODES = frozenset(
    {
        ErrorCode.TIMEOUT,
        ErrorCode.CONNECTION_ERROR,
        ErrorCode.SERVER_ERROR,
        ErrorCode.AUTH_FAILED,
        ErrorCode.INVALID_SIGN,
        ErrorCode.PARTNER_PROJECT_NOT_FOUND,
    }
)
TRANSIENT_CODES = frozenset(
    {
        ErrorCode.RATE_LIMITED,
        ErrorCode.UNKNOWN_STATUS,
        ErrorCode.PROVIDER_NOT_CONFIGURED,
        ErrorCode.CIRCUIT_OPEN,
        ErrorCode.PROVIDER_PAUSED,
        ErrorCode.INTERNAL_ERROR,
    }
)
PERMANENT_CODES = frozenset(
    {
        ErrorCode.NOT_FOUND,
        ErrorCode.REQUEST_NOT_FOUND,
        ErrorCode.HTTP_ERROR,
        ErrorCode.REQUEST_FAILED,
        ErrorCode.MALFORMED_RESPONSE,
        ErrorCode.RESPONSE_TOO_LARGE,
        ErrorCode.RESPONSE_TOO_DEEP,
        ErrorCode.INVALID_EXTERNAL_ID,
    }
)
DECISION_CODES = frozenset(
    {
        ErrorCode.PASSPORT_VALIDATION_FAILURE,
        ErrorCode.INN_VALIDATION_FAILURE,
        ErrorCode.ALREADY_EXISTS,
    }
)


class TransitionReason(StrEnum):
    """Why a verification changed status (`reason` in events and history)."""

    PROVIDER = "provider"  # the provider said so
    PROVIDER_ERROR = "provider_error"  # ended `failed` after repeated permanent errors
    TIMED_OUT = "timed_out"  # the maximum age was reached
    OPERATOR_RETRY = "operator_retry"  # an operator re-opened a failed or timed-out one


class KycPollerError(Exception):
    """The root of every error kyc-poller raises on purpose."""


class ConfigurationError(KycPollerError, ValueError):
    """A setting (an environment variable) holds a value that cannot be used."""


class ProviderConfigurationError(ConfigurationError):
    """A provider is used without the base URL or credentials it needs."""


class StorageUnavailableError(KycPollerError):
    """The database could not be reached or failed for a transient reason.

    Its text never quotes the database's message (that can quote stored data).
    """


class StorageError(KycPollerError):
    """A database error that retrying will not fix by itself (details withheld)."""


class SchemaNotReady(KycPollerError, RuntimeError):
    """The database answers but lacks the schema this code needs (not migrated, or behind)."""


class RequestRejected(KycPollerError, ValueError):
    """An app's request is refused with the reason; nothing was stored."""


class UnknownProviderError(RequestRejected):
    """A provider name kyc-poller has no adapter for."""

    def __init__(self, name: object, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown provider {name!r}; known providers: {', '.join(known)}")
        self.name = name
        self.known = known

    def __reduce__(self) -> tuple[type[UnknownProviderError], tuple[object, tuple[str, ...]]]:
        # Rebuilt from its own arguments (Celery pickles task errors for the caller).
        return type(self), (self.name, self.known)


class InvalidExternalIdError(RequestRejected):
    """The id is not one kyc-poller is willing to store or put in a provider URL."""


class InvalidVerificationTypeError(RequestRejected):
    """The provider has no such verification type."""


class TrackingConflictError(RequestRejected):
    """The verification is already tracked with a different verification type."""


class TrackingCeilingError(RequestRejected):
    """The provider already has its ceiling of verifications being polled: nothing stored."""


class ProviderError(KycPollerError):
    """A status check that did not produce a usable answer.

    `code` is safe to log and to store: messages name the provider and the HTTP
    status, never credentials, signatures or the response body.
    """

    permanent: bool = False
    # True when the fault is the provider's as a whole (outage, credentials).
    provider_wide: bool = False

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        provider_status: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after
        self.provider_status = provider_status

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


class TransientProviderError(ProviderError):
    """Trying again later can help: unknown status, not configured here, an internal error."""


class ProviderUnavailableError(TransientProviderError):
    """The provider as a whole fails: timeout, connection error, 5xx, or refused credentials.

    Never counted against the verification (a key rotation gone wrong fails no
    verification); its circuit breaker counts it instead.
    """

    provider_wide = True


class RateLimitedError(TransientProviderError):
    """HTTP 429: `retry_after` (seconds, if given) slows the provider for the whole fleet."""


class PermanentProviderError(ProviderError):
    """Trying again will not help by itself: 404, malformed or oversized answer, a bad id."""

    permanent = True
