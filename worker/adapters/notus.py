"""Notus: standard individual verification sessions.

GET {base}/api/v1/kyc/individual-verification-sessions/standard/{sessionId}
with the API key in the `x-api-key` header. The answer is
{"session": {"id", "status", "livenessRequired", "firstName", "lastName",
"birthDate", "document": {"id", "type", "category"}, "createdAt", "updatedAt"}}.

GUESS: the documentation shows only "PENDING"; the other status words in
STATUS_MAP are what such a session plausibly goes through (upper-case, matched
case-insensitively). CANCELED and DECLINED are accepted as spellings of
CANCELLED and REJECTED. Words outside the table are `unknown_status`
(transient): kyc-poller keeps polling and the table is easy to extend.

Notus has no verification types: the type must be empty.
"""

from __future__ import annotations

from typing import Any

from worker.adapters.base import PollResult
from worker.adapters.common import (
    lookup_status,
    refuse_invalid_id,
    require_api_key,
    validate_untyped_id,
)
from worker.adapters.http import (
    ProviderHttp,
    check_base_url,
    malformed_response,
    provider_url,
    short_text,
    status_word,
)
from worker.config import ProviderSettings
from worker.domain.statuses import VerificationStatus

STATUS_PATH = ("api", "v1", "kyc", "individual-verification-sessions", "standard")

# Notus status word (upper-cased) -> normalized status.
STATUS_MAP: dict[str, VerificationStatus] = {
    "PENDING": VerificationStatus.PENDING,
    "IN_PROGRESS": VerificationStatus.IN_PROGRESS,
    "IN_REVIEW": VerificationStatus.IN_REVIEW,
    "RESUBMISSION_REQUESTED": VerificationStatus.RETRY,
    "APPROVED": VerificationStatus.APPROVED,
    "REJECTED": VerificationStatus.REJECTED,
    "DECLINED": VerificationStatus.REJECTED,
    "EXPIRED": VerificationStatus.EXPIRED,
    "ABANDONED": VerificationStatus.ABANDONED,
    "CANCELLED": VerificationStatus.CANCELLED,
    "CANCELED": VerificationStatus.CANCELLED,
}


class NotusAdapter:
    """Status check of one Notus verification session."""

    name: str = "notus"
    default_verification_type: str | None = None

    def __init__(self, settings: ProviderSettings, http: ProviderHttp) -> None:
        self.base_url = check_base_url(self.name, settings.base_url)
        self._api_key = require_api_key(self.name, settings.api_key, "NOTUS_API_KEY")
        self.http = http

    @classmethod
    def validate_external_id(cls, external_id: str, verification_type: str | None) -> None:
        validate_untyped_id(cls.name, external_id, verification_type)

    def fetch_status(self, external_id: str, verification_type: str | None) -> PollResult:
        refuse_invalid_id(self.validate_external_id, external_id, verification_type)
        url = provider_url(self.base_url, *STATUS_PATH, external_id)
        body = self.http.request_json(self.name, "GET", url, headers={"x-api-key": self._api_key})
        session = body.get("session")
        if not isinstance(session, dict):
            raise malformed_response(self.name, "the 'session' object is missing")
        word = status_word(self.name, session)
        status = lookup_status(self.name, word, STATUS_MAP, str.upper)
        return PollResult(
            status=status, provider_status=word, payload=body, summary=summarize(session)
        )


def summarize(session: dict[str, Any]) -> dict[str, Any]:
    """The non-personal facts: no names, birth date, or document id."""
    summary: dict[str, Any] = {}
    if isinstance(session.get("livenessRequired"), bool):
        summary["liveness_required"] = session["livenessRequired"]
    document = session.get("document")
    if isinstance(document, dict):
        for field, key in (("type", "document_type"), ("category", "document_category")):
            if (value := short_text(document.get(field))) is not None:
                summary[key] = value
    for field, key in (("createdAt", "created_at"), ("updatedAt", "updated_at")):
        if (value := short_text(session.get(field))) is not None:
            summary[key] = value
    return summary
