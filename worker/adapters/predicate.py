"""Predicate: the status of a verification session, individual or business.

GET {base}/api/v1/status/{type}/{sessionId} with `Authorization: Bearer
<api_key>`; type is individual (the default) or business, and session ids are
UUIDs (documented), so anything else is refused before a request is made.
The answer is {"sessionId", "status", "userId", "completedAt",
"verifiedWallets": [...], "unverifiedWallets": [...]}.

Status words are documented (STATUS_MAP). `submitted` is a manual operator
review (`in_review`); `completed` is the approval; `retry` is a fixable issue
the user can resubmit. GUESS: words are matched case-insensitively.

The summary holds wallet counts and completedAt; never wallet addresses or ids,
nor the userId.
"""

from __future__ import annotations

import re
from typing import Any

from worker.adapters.base import PollResult
from worker.adapters.common import (
    lookup_status,
    refuse_invalid_id,
    require_api_key,
)
from worker.adapters.http import (
    ProviderHttp,
    check_base_url,
    provider_url,
    short_text,
    status_word,
)
from worker.config import ProviderSettings
from worker.domain.ids import validate_external_id
from worker.domain.statuses import VerificationStatus

STATUS_PATH = ("api", "v1", "status")
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


class PredicateAdapter:
    """Status check of one Predicate verification session."""

    name: str = "predicate"
    default_verification_type: str | None = DEFAULT_TYPE

    def __init__(self, settings: ProviderSettings, http: ProviderHttp) -> None:
        self.base_url = check_base_url(self.name, settings.base_url)
        self._api_key = require_api_key(self.name, settings.api_key, "PREDICATE_API_KEY")
        self.http = http

    @classmethod
    def validate_external_id(cls, external_id: str, verification_type: str | None) -> None:
        validate_external_id(external_id)
        if not _UUID.fullmatch(external_id):
            raise ValueError(
                f"predicate session ids are UUIDs (8-4-4-4-12 hex digits), got {external_id!r}"
            )
        if verification_type is not None and verification_type not in VERIFICATION_TYPES:
            raise ValueError(
                "predicate verification type must be one of "
                f"{', '.join(VERIFICATION_TYPES)}; got {verification_type!r}"
            )

    def fetch_status(self, external_id: str, verification_type: str | None) -> PollResult:
        verification_type = verification_type or DEFAULT_TYPE
        refuse_invalid_id(self.validate_external_id, external_id, verification_type)
        url = provider_url(self.base_url, *STATUS_PATH, verification_type, external_id)
        body = self.http.request_json(
            self.name, "GET", url, headers={"Authorization": f"Bearer {self._api_key}"}
        )
        word = status_word(self.name, body)
        status = lookup_status(self.name, word, STATUS_MAP)
        return PollResult(
            status=status, provider_status=word, payload=body, summary=summarize(body)
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
