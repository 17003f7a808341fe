"""Predicate: the status of a verification session, individual or business.

GET {base}/api/v1/status/{type}/{sessionId} with `Authorization: Bearer
<api_key>`; type is individual (the default) or business, and session ids are
UUIDs (documented), so anything else is refused before a request is made.
The answer is {"sessionId", "status", "userId", "completedAt",
"verifiedWallets": [...], "unverifiedWallets": [...]}.

Status words are documented (STATUS_MAP). `submitted` is a manual operator
review (`in_review`); `completed` is the approval; `retry` is a fixable issue
the user can resubmit. GUESS: words are matched case-insensitively.

Canonical ids: a UUID is stored lower-case, so the upper-case spelling of a
tracked session is the same verification (UUIDs are case-insensitive).

The summary holds wallet counts and completedAt; never wallet addresses or ids,
nor the userId.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from worker.adapters.common import ApiKeySettings, lookup_status
from worker.adapters.contract import (
    PollResult,
    ProviderAdapter,
    ProviderRequest,
    ProviderResponse,
    require,
)
from worker.adapters.http import checked_json, provider_url, short_text, status_word
from worker.domain.errors import InvalidExternalIdError
from worker.domain.ids import validate_external_id
from worker.domain.statuses import VerificationStatus

STATUS_PATH = ("api", "v1", "status")
STREAM_PATH = ("api", "v1", "status", "realtime")
VERIFICATION_TYPES = ("individual", "business")
DEFAULT_TYPE = "individual"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# Predicate status word (lower-cased) -> normalized status.
STATUS_MAP: dict[str, VerificationStatus] = {
    "pending": VerificationStatus.PENDING,
    "submitted": VerificationStatus.IN_REVIEW,
    "completed": VerificationStatus.APPROVED,
    "rejected": VerificationStatus.REJECTED,
    "retry": VerificationStatus.RETRY,
}


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
        status = lookup_status(self.name, word, STATUS_MAP)
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
