"""Bank131 KYC: the status of a passport/INN check.

GET (stage host) or POST (live host, empty body) {base}/api/v1.1/check/{id}
with the headers `X-PARTNER-PROJECT: <project>`, `Content-Type:
application/json` and a request signature. The answer is {"status": "ok" |
"pending" | "error", "data": {"id", "description", ...}, "error": {"code",
"description"}}. Error answers come with HTTP 200 per the docs, and may come
with a 4xx: the JSON body is read first, the HTTP status only when the body
says nothing usable.

Outcomes (STATUS_MAP, keyed by "ok", "pending" or "error:<code>"):
- passport/INN validation failures are a decision: `rejected`, error_code = the code;
- already_exists: this check duplicates an earlier one whose id is in data.id;
  it ends `cancelled` with related_external_id = that id, and the core tracks it;
- request_not_found, partner_project_not_found, invalid_sign: permanent errors
  whose code is Bank131's code;
- any other error code: `unknown_status` (transient).

GUESS: the signature. Bank131 documents an invalid_sign error but not the
scheme here (the real API signs with RSA). We send X-PARTNER-SIGN = hex
HMAC-SHA256(signing_secret, f"{METHOD}\\n{path}\\n{body}"); all of it lives in
`sign_request`, so swapping the scheme touches one function.
GUESS: "pending" means the check is running (`in_progress`), since the data
have already been submitted. Ids are documented as numbers; any plain token is
accepted. Bank131 has no verification types.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from worker.adapters.base import PermanentProviderError, PollResult, ProviderConfigurationError
from worker.adapters.common import (
    lookup_status,
    refuse_invalid_id,
    validate_untyped_id,
)
from worker.adapters.http import (
    ProviderHttp,
    check_base_url,
    json_object_or_none,
    malformed_response,
    parse_json_object,
    provider_url,
    raise_for_http_status,
    short_text,
    status_word,
)
from worker.config import ProviderSettings
from worker.domain.statuses import VerificationStatus

CHECK_PATH = ("api", "v1.1", "check")
PROJECT_HEADER = "X-PARTNER-PROJECT"
SIGN_HEADER = "X-PARTNER-SIGN"


@dataclass(frozen=True)
class Failure:
    """An error answer that is not a decision: a permanent error with Bank131's code."""

    code: str
    message: str


# Bank131 answer ("ok", "pending", "error:<code>") -> normalized status, or a failure.
STATUS_MAP: dict[str, VerificationStatus | Failure] = {
    "ok": VerificationStatus.APPROVED,
    "pending": VerificationStatus.IN_PROGRESS,
    "error:passport_validation_failure": VerificationStatus.REJECTED,
    "error:inn_validation_failure": VerificationStatus.REJECTED,
    "error:already_exists": VerificationStatus.CANCELLED,
    "error:request_not_found": Failure("request_not_found", "Bank131 does not know this check id"),
    "error:partner_project_not_found": Failure(
        "partner_project_not_found", "Bank131 does not know the configured partner project"
    ),
    "error:invalid_sign": Failure("invalid_sign", "Bank131 refused the request signature"),
}
ALREADY_EXISTS = "error:already_exists"


def sign_request(secret: str, method: str, path: str, body: str) -> str:
    """The X-PARTNER-SIGN value for one request (GUESS: HMAC-SHA256, see the module doc)."""
    message = f"{method}\n{path}\n{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Bank131Adapter:
    """Status check of one Bank131 check request."""

    name: str = "bank131"
    default_verification_type: str | None = None

    def __init__(self, settings: ProviderSettings, http: ProviderHttp) -> None:
        self.base_url = check_base_url(self.name, settings.base_url)
        if not settings.project or not settings.signing_secret:
            raise ProviderConfigurationError(
                "bank131 needs a partner project and a signing secret "
                "(BANK131_PROJECT, BANK131_SIGNING_SECRET)"
            )
        method = (settings.method or "GET").upper()
        if method not in {"GET", "POST"}:
            raise ProviderConfigurationError(f"bank131 method must be GET or POST, not {method!r}")
        self.method = method
        self._project = settings.project
        self._secret = settings.signing_secret
        self.http = http

    @classmethod
    def validate_external_id(cls, external_id: str, verification_type: str | None) -> None:
        validate_untyped_id(cls.name, external_id, verification_type)

    def fetch_status(self, external_id: str, verification_type: str | None) -> PollResult:
        refuse_invalid_id(self.validate_external_id, external_id, verification_type)
        response = self._send(provider_url(self.base_url, *CHECK_PATH, external_id))
        answer = json_object_or_none(response)
        status = response.status_code
        readable = 200 <= status < 300 or (400 <= status < 500 and status != 429)
        if not (readable and answer is not None and _error_code(answer) is not None):
            raise_for_http_status(self.name, response)
            answer = parse_json_object(self.name, response)
        return self._interpret(answer, status)

    def _send(self, url: str) -> requests.Response:
        body = ""
        headers = {
            PROJECT_HEADER: self._project,
            "Content-Type": "application/json",
            SIGN_HEADER: sign_request(self._secret, self.method, urlsplit(url).path, body),
        }
        payload = body.encode() if self.method == "POST" else None
        return self.http.send(self.name, self.method, url, headers=headers, body=payload)

    def _interpret(self, answer: dict[str, Any], http_status: int) -> PollResult:
        word = status_word(self.name, answer).lower()
        code = None
        if word == "error":
            code = _error_code(answer)
            if code is None:
                raise malformed_response(self.name, "an error answer without an error code")
            provider_status = f"error:{code}"
        else:
            provider_status = word
        outcome = lookup_status(self.name, provider_status, STATUS_MAP)
        if isinstance(outcome, Failure):
            raise PermanentProviderError(
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
            error_code=code,
            related_external_id=related,
        )


def _error_code(answer: dict[str, Any]) -> str | None:
    """The lower-cased error.code of an error answer, if it has one."""
    if not isinstance(answer.get("status"), str) or answer["status"].strip().lower() != "error":
        return None
    error = answer.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if not isinstance(code, str) or not code.strip():
        return None
    return code.strip().lower()


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
