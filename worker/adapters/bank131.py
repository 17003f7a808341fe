"""Bank131 KYC: the status of a passport/INN check.

{base}/api/<version>/check/{id} with the headers `X-PARTNER-PROJECT: <project>`
and `Content-Type: application/json`, as the status-check documents show; a
signature only when configured (BANK131_SIGNING_MODE, see `bank131_signing`).

Version and method (BANK131_API_VERSION, BANK131_METHOD):
- v1.1 (the default; bank131.txt): GET on the stage host kyc-stage.bank131.ru,
  POST with an empty body on the live host kyc.bank131.ru;
- v2.0 (developer.131.ru/en/verification/verification-status, which says v1.1
  is no longer updated): GET on both hosts.
The method follows the host unless BANK131_METHOD is set; any other host (a
proxy, the fakes) gets GET. GUESS: v2.0 answers in v1.1's shape (the page shows
the same status/data/error fields).

The answer is {"status": "ok" | "pending" | "error", "data": {"id",
"description", ...}, "error": {"code", "description"}}. Error answers come with
HTTP 200 per the docs, and may come with a 4xx: the JSON body is read first,
the HTTP status only when the body says nothing usable.

Outcomes (STATUS_TABLE, keyed by "ok", "pending" or "error:<code>"):
- passport/INN validation failures are a decision: `rejected`, error_code = the code;
- already_exists: this check duplicates an earlier one whose id is in data.id;
  it ends `cancelled` with related_external_id = that id, and the core tracks it;
- request_not_found: a permanent error of this check;
- partner_project_not_found, invalid_sign: the partner's configuration is wrong
  for every check (provider-wide: the circuit breaker counts them, no
  verification fails for them);
- any other error code: `unknown_status` (transient).

GUESS: "pending" means the check is running (`in_progress`), since the data
have already been submitted. Ids are documented as numbers; any plain token is
accepted. Bank131 has no verification types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from worker.adapters.bank131_signing import SigningConfigurationError, build_signer
from worker.adapters.common import plain_id
from worker.adapters.contract import (
    PollResult,
    ProviderAdapter,
    ProviderRequest,
    ProviderResponse,
    ProviderSettings,
    require,
)
from worker.adapters.http import (
    json_object_or_none,
    malformed_response,
    parse_json_object,
    provider_url,
    raise_for_http_status,
    short_text,
    status_word,
)
from worker.adapters.status_table import StatusTable, documented, guessed
from worker.domain.errors import (
    ErrorCode,
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    ProviderUnavailableError,
)
from worker.domain.statuses import VerificationStatus

API_VERSIONS = ("v1.1", "v2.0")
DEFAULT_API_VERSION = "v1.1"
LIVE_HOST = "kyc.bank131.ru"
STAGE_HOST = "kyc-stage.bank131.ru"
PROJECT_HEADER = "X-PARTNER-PROJECT"
SIGN_HEADER = "X-PARTNER-SIGN"


@dataclass(frozen=True)
class Bank131Settings(ProviderSettings):
    """BANK131_*: the partner project, the HTTP method, and how requests are signed."""

    project: str = ""
    api_version: str = DEFAULT_API_VERSION  # v1.1 | v2.0
    method: str = ""  # empty: as documented for the version and host (see the module doc)
    signing_mode: str = "none"  # none | rsa | hmac
    rsa_private_key: str = field(default="", repr=False)
    rsa_private_key_path: str = ""
    rsa_private_key_passphrase: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class Failure:
    """An error answer that is not a decision: a ProviderError with Bank131's code."""

    code: ErrorCode
    message: str
    provider_wide: bool = False


BANK131_DOC = "bank131.txt: Verification status, Check/{id} (developer.131.ru)"

# Bank131 answer ("ok", "pending", "error:<code>") -> normalized status, or a failure.
STATUS_TABLE: StatusTable[VerificationStatus | Failure] = StatusTable(
    "bank131",
    {
        "ok": documented(VerificationStatus.APPROVED, f"{BANK131_DOC}: OK"),
        "pending": guessed(
            VerificationStatus.IN_PROGRESS,
            f"{BANK131_DOC} says the data were submitted and the check runs: the check is "
            "in progress, not waiting for a person's review",
        ),
        "error:passport_validation_failure": documented(
            VerificationStatus.REJECTED, f"{BANK131_DOC}: Error table"
        ),
        "error:inn_validation_failure": documented(
            VerificationStatus.REJECTED, f"{BANK131_DOC}: Error table"
        ),
        "error:already_exists": documented(
            VerificationStatus.CANCELLED,
            f"{BANK131_DOC}: Error table (the earlier check's id is in data.id)",
        ),
        "error:request_not_found": documented(
            Failure(ErrorCode.REQUEST_NOT_FOUND, "Bank131 does not know this check id"),
            f"{BANK131_DOC}: Error table",
        ),
        "error:partner_project_not_found": documented(
            Failure(
                ErrorCode.PARTNER_PROJECT_NOT_FOUND,
                "Bank131 does not know the configured partner project",
                provider_wide=True,
            ),
            f"{BANK131_DOC}: Error table",
        ),
        "error:invalid_sign": documented(
            Failure(
                ErrorCode.INVALID_SIGN, "Bank131 refused the request signature", provider_wide=True
            ),
            f"{BANK131_DOC}: Error table",
        ),
    },
)
ALREADY_EXISTS = "error:already_exists"


class Bank131Adapter(ProviderAdapter[Bank131Settings]):
    """Status check of one Bank131 check request."""

    name: ClassVar[str] = "bank131"
    env_prefix: ClassVar[str] = "BANK131"
    settings_type = Bank131Settings

    def __init__(self, settings: Bank131Settings) -> None:
        super().__init__(settings)
        self._project = require(self.name, settings.project, "BANK131_PROJECT")
        version = (settings.api_version or DEFAULT_API_VERSION).strip().lower()
        if version not in API_VERSIONS:
            raise ProviderConfigurationError(
                f"BANK131_API_VERSION must be one of {', '.join(API_VERSIONS)}, "
                f"not {version[:20]!r}"
            )
        self.api_version = version
        method = settings.method.strip().upper()
        if method not in {"", "GET", "POST"}:
            raise ProviderConfigurationError(
                f"BANK131_METHOD must be GET or POST, not {method[:20]!r}"
            )
        self.method = method or documented_method(version, self.base_url)
        self.statuses = STATUS_TABLE.with_extra(settings.status_map_extra)
        try:
            self._signer = build_signer(
                settings.signing_mode.lower(),
                rsa_key_pem=settings.rsa_private_key,
                rsa_key_path=settings.rsa_private_key_path,
                rsa_key_passphrase=settings.rsa_private_key_passphrase,
                hmac_secret=settings.signing_secret,
            )
        except SigningConfigurationError as exc:
            raise ProviderConfigurationError(str(exc)) from None

    @classmethod
    def canonical_id(cls, external_id: object) -> str:
        return plain_id(external_id)

    def build_request(self, external_id: str, verification_type: str | None) -> ProviderRequest:
        url = provider_url(
            self.base_url, "api", self.api_version, "check", self.canonical_id(external_id)
        )
        body = b""
        headers = {PROJECT_HEADER: self._project, "Content-Type": "application/json"}
        signature = self._signer.sign(self.method, urlsplit(url).path, body)
        if signature is not None:
            headers[SIGN_HEADER] = signature
        return ProviderRequest(self.method, url, headers, body)

    def interpret(self, response: ProviderResponse) -> PollResult:
        answer = json_object_or_none(response)
        status = response.status
        code = _error_code(answer) if answer is not None else None
        # A 4xx speaks for the verification only with an error code we know; any other 4xx
        # (a 401 "unauthorized", a 400 "validation_error") means what its HTTP status means.
        if 200 <= status < 300:
            readable = code is not None
        else:
            readable = 400 <= status < 500 and status != 429 and f"error:{code}" in self.statuses
        if not (readable and answer is not None):
            raise_for_http_status(self.name, response)
            answer = parse_json_object(self.name, response)
        return self._meaning(answer, status)

    def _meaning(self, answer: dict[str, Any], http_status: int) -> PollResult:
        word = status_word(self.name, answer).lower()
        code = None
        if word == "error":
            code = _error_code(answer)
            if code is None:
                raise malformed_response(self.name, "an error answer without an error code")
            provider_status = f"error:{code}"
        else:
            provider_status = word
        outcome = self.statuses.lookup(provider_status)
        if isinstance(outcome, Failure):
            error_type: type[ProviderError] = (
                ProviderUnavailableError if outcome.provider_wide else PermanentProviderError
            )
            raise error_type(
                outcome.code,
                f"{outcome.message} (HTTP {http_status})",
                http_status=http_status,
                provider_status=provider_status,
            )
        related = _earlier_id(answer) if provider_status == ALREADY_EXISTS else None
        if provider_status == ALREADY_EXISTS and related is None:
            raise malformed_response(self.name, "already_exists without the earlier check's id")
        return PollResult(
            status=outcome,
            provider_status=provider_status,
            payload=answer,
            summary=summarize(answer, code, related),
            error_code=_known_code(code),
            related_external_id=related,
        )


def documented_method(version: str, base_url: str) -> str:
    """The method Bank131 documents for a version and host: POST only for v1.1 on the live host."""
    host = (urlsplit(base_url).hostname or "").lower()
    return "POST" if version == "v1.1" and host == LIVE_HOST else "GET"


def _error_code(answer: dict[str, Any]) -> str | None:
    """The lower-cased error.code of an error answer, if it has one."""
    if not isinstance(answer.get("status"), str) or answer["status"].strip().lower() != "error":
        return None
    error = answer.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if not isinstance(code, str) or not code.strip():
        return None
    return code.strip().lower()


def _known_code(code: str | None) -> ErrorCode | None:
    """The code as an ErrorCode; None for a code only an operator's extra words map."""
    try:
        return None if code is None else ErrorCode(code)
    except ValueError:
        return None


def _earlier_id(answer: dict[str, Any]) -> str | None:
    data = answer.get("data")
    earlier = data.get("id") if isinstance(data, dict) else None
    if isinstance(earlier, bool) or not isinstance(earlier, str | int):
        return None
    return str(earlier) or None


def summarize(answer: dict[str, Any], code: str | None, related: str | None) -> dict[str, Any]:
    """The status descriptions and codes; not the participant (recipient) data."""
    summary: dict[str, Any] = {}
    data = answer.get("data")
    description = short_text(data.get("description")) if isinstance(data, dict) else None
    if description is not None:
        summary["description"] = description
    if code is not None:
        summary["error_code"] = code
        error = answer.get("error")
        if isinstance(error, dict) and (text := short_text(error.get("description"), 200)):
            summary["error_description"] = text
    if related is not None:
        summary["earlier_check_id"] = related
    return summary
