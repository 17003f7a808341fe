"""Notus: standard individual verification sessions.

GET {base}/api/v1/kyc/individual-verification-sessions/standard/{sessionId}
with the API key in the `x-api-key` header. The answer is
{"session": {"id", "status", "livenessRequired", "firstName", "lastName",
"birthDate", "document": {"id", "type", "category"}, "createdAt", "updatedAt",
"individualId" (once COMPLETED)}}.

Status words (STATUS_TABLE, upper-case, matched case-insensitively): notus.txt
shows only PENDING; public Notus clients written from docs.notus.team
(guides/kyc-quickstart) and real answers type the status as PENDING |
VERIFYING | COMPLETED | FAILED | EXPIRED. VERIFYING is the documents being
checked (`in_review`), COMPLETED the approval, FAILED the rejection. The words
kyc-poller guessed before those were known stay, marked GUESS: harmless if
Notus never sends them. Words outside the table are `unknown_status`.

The summary keeps `individualId` (Notus's id of the person once COMPLETED: an
id, not personal data) and the liveness flag; never names, birth date or the
document's id. Notus has no verification types: the type must be empty.
"""

from __future__ import annotations

from typing import Any, ClassVar

from worker.adapters.common import ApiKeySettings, plain_id
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
from worker.adapters.status_table import StatusTable, documented, guessed
from worker.domain.ids import validate_external_id
from worker.domain.statuses import VerificationStatus

STATUS_PATH = ("api", "v1", "kyc", "individual-verification-sessions", "standard")

NOTUS_DOC = "notus.txt: GET .../standard/{sessionId} example answer (api.notus.team)"
NOTUS_CLIENTS = (
    "public Notus clients written from docs.notus.team (guides/kyc-quickstart): "
    "status PENDING | VERIFYING | COMPLETED | FAILED | EXPIRED"
)
_OLD_GUESS = "the vocabulary kyc-poller assumed before Notus's words were known"

STATUS_TABLE: StatusTable[VerificationStatus] = StatusTable(
    "notus",
    {
        "PENDING": documented(VerificationStatus.PENDING, f"{NOTUS_DOC}; {NOTUS_CLIENTS}"),
        "VERIFYING": documented(VerificationStatus.IN_REVIEW, NOTUS_CLIENTS),
        "COMPLETED": documented(VerificationStatus.APPROVED, NOTUS_CLIENTS),
        "FAILED": documented(VerificationStatus.REJECTED, NOTUS_CLIENTS),
        "EXPIRED": documented(VerificationStatus.EXPIRED, NOTUS_CLIENTS),
        "IN_PROGRESS": guessed(VerificationStatus.IN_PROGRESS, _OLD_GUESS),
        "IN_REVIEW": guessed(VerificationStatus.IN_REVIEW, _OLD_GUESS),
        "RESUBMISSION_REQUESTED": guessed(VerificationStatus.RETRY, _OLD_GUESS),
        "APPROVED": guessed(VerificationStatus.APPROVED, _OLD_GUESS),
        "REJECTED": guessed(VerificationStatus.REJECTED, _OLD_GUESS),
        "DECLINED": guessed(VerificationStatus.REJECTED, f"{_OLD_GUESS} (REJECTED's synonym)"),
        "ABANDONED": guessed(VerificationStatus.ABANDONED, _OLD_GUESS),
        "CANCELLED": guessed(VerificationStatus.CANCELLED, _OLD_GUESS),
        "CANCELED": guessed(VerificationStatus.CANCELLED, f"{_OLD_GUESS} (US spelling)"),
    },
    fold=str.upper,
)


class NotusAdapter(ProviderAdapter[ApiKeySettings]):
    """Status check of one Notus verification session."""

    name: ClassVar[str] = "notus"
    env_prefix: ClassVar[str] = "NOTUS"
    settings_type = ApiKeySettings

    def __init__(self, settings: ApiKeySettings) -> None:
        super().__init__(settings)
        self._api_key = require(self.name, settings.api_key, "NOTUS_API_KEY")
        self.statuses = STATUS_TABLE.with_extra(settings.status_map_extra)

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
        status = self.statuses.lookup(word)
        return PollResult(
            status=status, provider_status=word, payload=body, summary=summarize(session)
        )


def summarize(session: dict[str, Any]) -> dict[str, Any]:
    """The non-personal facts: no names, birth date, or document id."""
    summary: dict[str, Any] = {}
    if (individual_id := _token(session.get("individualId"))) is not None:
        summary["individual_id"] = individual_id
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


def _token(value: object) -> str | None:
    """An id as Notus gives it, if it is a plain token (anything else is not kept)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        return validate_external_id(value)
    except ValueError:
        return None
