"""The verifications the demo starts at the fake providers, with their scripted progressions.

Each script is what the provider answers to successive status checks, in the
words its documents use (the fakes' DOCUMENTED_STATUSES: a test checks it), including
faults kyc-poller must ride out. `expected` is the normalized status the demo must
end with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scenario:
    provider: str
    external_id: str
    script: list[Any]
    expected: str
    verification_type: str | None = None
    # Started at the provider but never tracked by the app directly (found via a pointer).
    tracked_by_app: bool = True
    # Ends with one verification.reverification_due event after its approval.
    reverification_due: bool = False


def demo_scenarios(run_id: str) -> list[Scenario]:
    """A batch across all four providers; ids are unique per run."""

    def uid(n: int) -> str:
        # Predicate requires UUID session ids; the others take any plain token.
        return f"{run_id[:8]}-0000-4000-8000-{n:012d}"

    return [
        Scenario(
            "notus",
            f"notus-{run_id}-1",
            ["PENDING", "PENDING", "VERIFYING", "VERIFYING", "COMPLETED"],
            "approved",
        ),
        Scenario(
            "notus",
            f"notus-{run_id}-2",
            ["PENDING", {"fault": "server_error", "http_status": 503}, "VERIFYING", "FAILED"],
            "rejected",
        ),
        Scenario("notus", f"notus-{run_id}-4", ["PENDING", "EXPIRED"], "expired"),
        Scenario(
            "notus",
            f"notus-{run_id}-3",
            ["PENDING", {"fault": "garbage"}, "VERIFYING", "COMPLETED"],
            "approved",
        ),
        Scenario("bank131", f"{run_id}1", ["pending", "pending", "ok"], "approved"),
        Scenario(
            "bank131", f"{run_id}2", ["pending", "error:passport_validation_failure"], "rejected"
        ),
        Scenario(
            "bank131",
            f"{run_id}3",
            [{"status": "error:already_exists", "earlier_id": f"{run_id}4"}],
            "cancelled",
        ),
        Scenario("bank131", f"{run_id}4", ["pending", "ok"], "approved", tracked_by_app=False),
        Scenario(
            "gu1",
            f"gu1-{run_id}-1",
            [
                "pending",
                "in_progress",
                {"fault": "rate_limited", "retry_after": 1},
                "in_review",
                "approved",
            ],
            "approved",
        ),
        Scenario("gu1", f"gu1-{run_id}-2", ["pending", "in_progress", "rejected"], "rejected"),
        Scenario("gu1", f"gu1-{run_id}-3", ["pending", "in_progress", "abandoned"], "abandoned"),
        # Stuck in in_progress until kyc-poller asks gu1 to sync it (KYC_SYNC_AFTER_SECONDS).
        Scenario(
            "gu1",
            f"gu1-{run_id}-4",
            ["pending", {"status": "in_progress", "after_sync": "approved"}],
            "approved",
        ),
        # An approval that expires in a year, until gu1 says it needs re-verification.
        Scenario(
            "gu1",
            f"gu1-{run_id}-5",
            [
                "pending",
                {"status": "approved", "expires_in": 365 * 86400},
                {"status": "approved", "expires_in": 365 * 86400, "needs_reverification": True},
            ],
            "approved",
            reverification_due=True,
        ),
        Scenario("predicate", uid(1), ["pending", "submitted", "completed"], "approved"),
        Scenario(
            "predicate",
            uid(2),
            ["pending", "retry", "pending", "submitted", "rejected"],
            "rejected",
            verification_type="business",
        ),
        Scenario(
            "predicate",
            uid(3),
            ["pending", {"fault": "timeout", "delay": 3.0}, "submitted", "completed"],
            "approved",
        ),
    ]
