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

from typing import Any, ClassVar

from worker.adapters.common import ApiKeySettings, lookup_status, plain_id
from worker.adapters.contract import (
    PollResult,
    ProviderAdapter,
    ProviderRequest,
    ProviderResponse,
    require,
)
from worker.adapters.http import (
    checked_json,
    malformed_response,
    provider_url,
    short_text,
    status_word,
)
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


class NotusAdapter(ProviderAdapter[ApiKeySettings]):
    """Status check of one Notus verification session."""

    name: ClassVar[str] = "notus"
    env_prefix: ClassVar[str] = "NOTUS"
    settings_type = ApiKeySettings

    def __init__(self, settings: ApiKeySettings) -> None:
        super().__init__(settings)
        self._api_key = require(self.name, settings.api_key, "NOTUS_API_KEY")

    @classmethod
    def canonical_id(cls, external_id: object) -> str:
        return plain_id(external_id)

    def build_request(self, external_id: str, verification_type: str | None) -> ProviderRequest:
        url = provider_url(self.base_url, *STATUS_PATH, self.canonical_id(external_id))
        return ProviderRequest("GET", url, {"x-api-key": self._api_key})

    def interpret(self, response: ProviderResponse) -> PollResult:
        body = checked_json(self.name, response)
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
