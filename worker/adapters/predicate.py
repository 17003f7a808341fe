"""Predicate: the status of a verification session, individual or business.

GET {base}/api/v1/status/{type}/{sessionId} with `Authorization: Bearer
<api_key>`; type is individual (the default) or business, and session ids are
UUIDs (documented), so anything else is refused before a request is made.
The answer is {"sessionId", "status", "userId", "completedAt",
"verifiedWallets": [...], "unverifiedWallets": [...]}.

Status words (STATUS_TABLE) are documented: `submitted` is a manual operator
review (`in_review`); `completed` is the approval; `retry` is a fixable issue
the user can resubmit. An older revision of the docs also used `in_progress`
and `failed`: accepted, marked GUESS in the table with the reason.
GUESS: words are matched case-insensitively.

Canonical ids: a UUID is stored lower-case, so the upper-case spelling of a
tracked session is the same verification (UUIDs are case-insensitive).

The summary holds wallet counts and completedAt; never wallet addresses or ids,
nor the userId.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from worker.adapters.common import ApiKeySettings
from worker.adapters.contract import (
    PollResult,
    ProviderAdapter,
    ProviderRequest,
    ProviderResponse,
    require,
)
from worker.adapters.http import checked_json, provider_url, short_text, status_word
from worker.adapters.status_table import StatusTable, documented, guessed
from worker.domain.errors import InvalidExternalIdError
from worker.domain.ids import validate_external_id
from worker.domain.statuses import VerificationStatus

STATUS_PATH = ("api", "v1", "status")
STREAM_PATH = ("api", "v1", "status", "realtime")
VERIFICATION_TYPES = ("individual", "business")
DEFAULT_TYPE = "individual"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

PREDICATE_DOC = (
    "predicate.txt: Status Values (docs.predicate.io/v2/identity/integration, "
    "api.identity.predicate.io)"
)
PREDICATE_OLD_DOC = "an older revision of Predicate's docs (host api.kyc.predicate.io)"

STATUS_TABLE: StatusTable[VerificationStatus] = StatusTable(
    "predicate",
    {
        "pending": documented(VerificationStatus.PENDING, PREDICATE_DOC),
        "submitted": documented(VerificationStatus.IN_REVIEW, PREDICATE_DOC),
        "completed": documented(VerificationStatus.APPROVED, PREDICATE_DOC),
        "rejected": documented(VerificationStatus.REJECTED, PREDICATE_DOC),
        "retry": documented(VerificationStatus.RETRY, PREDICATE_DOC),
        "in_progress": guessed(
            VerificationStatus.IN_PROGRESS,
            f"{PREDICATE_OLD_DOC} used the word without a description; read as its name says "
            "(the user is going through the flow, as `pending` is today)",
        ),
        "failed": guessed(
            VerificationStatus.REJECTED,
            f"{PREDICATE_OLD_DOC} used it where the current docs say `rejected` "
            '("Verification permanently failed"): a decision, not kyc-poller\'s `failed` '
            "(no decision)",
        ),
    },
)


class PredicateAdapter(ProviderAdapter[ApiKeySettings]):
    """Status check of one Predicate verification session."""

    name: ClassVar[str] = "predicate"
    env_prefix: ClassVar[str] = "PREDICATE"
    settings_type = ApiKeySettings
    verification_types: ClassVar[tuple[str, ...]] = VERIFICATION_TYPES
    default_verification_type: ClassVar[str | None] = DEFAULT_TYPE

    def __init__(self, settings: ApiKeySettings) -> None:
        super().__init__(settings)
        self._api_key = require(self.name, settings.api_key, "PREDICATE_API_KEY")
        self.statuses = STATUS_TABLE.with_extra(settings.status_map_extra)

    @classmethod
    def canonical_id(cls, external_id: object) -> str:
        token = validate_external_id(external_id)
        if not _UUID.fullmatch(token):
            raise InvalidExternalIdError(
                f"predicate session ids are UUIDs (8-4-4-4-12 hex digits), got {token!r}"
            )
        return token.lower()

    def build_request(self, external_id: str, verification_type: str | None) -> ProviderRequest:
        kind = self.canonical_type(verification_type) or DEFAULT_TYPE
        url = provider_url(self.base_url, *STATUS_PATH, kind, self.canonical_id(external_id))
        return ProviderRequest("GET", url, {"Authorization": f"Bearer {self._api_key}"})

    def interpret(self, response: ProviderResponse) -> PollResult:
        body = checked_json(self.name, response)
        word = status_word(self.name, body)
        status = self.statuses.lookup(word)
        return PollResult(
            status=status, provider_status=word, payload=body, summary=summarize(body)
        )

    def build_stream_request(
        self, external_id: str, verification_type: str | None
    ) -> ProviderRequest | None:
        """The documented status stream (server-sent events; "use SSE (recommended)").

        GET {base}/api/v1/status/realtime/{type}/{sessionId}. GUESS: each message's data is
        the status document; kyc-poller reads none of it (a message is a hint to poll).
        """
        kind = self.canonical_type(verification_type) or DEFAULT_TYPE
        url = provider_url(self.base_url, *STREAM_PATH, kind, self.canonical_id(external_id))
        return ProviderRequest(
            "GET",
            url,
            {"Authorization": f"Bearer {self._api_key}", "Accept": "text/event-stream"},
        )


def summarize(session: dict[str, Any]) -> dict[str, Any]:
    """Wallet counts and the completion time: no addresses, wallet ids or user id."""
    summary: dict[str, Any] = {}
    for field, key in (
        ("verifiedWallets", "verified_wallets"),
        ("unverifiedWallets", "unverified_wallets"),
    ):
        if isinstance(session.get(field), list):
            summary[key] = len(session[field])
    if (completed_at := short_text(session.get("completedAt"))) is not None:
        summary["completed_at"] = completed_at
    return summary
