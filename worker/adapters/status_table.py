"""One status table per adapter: each provider word, what it means, and where that comes from.

A `StatusTable` maps a provider's status words (folded: case-insensitive) to an
outcome, and every row names its source: the document and its address, or
`GUESS: <why>` where the documents are silent. A reviewer can then check each
row against the provider's docs, and a wrong guess is one row to correct.

Operators extend a table at run time without a release:
`KYC_<PROVIDER>_STATUS_MAP_EXTRA="VERIFYING=in_review,OTHER=approved"`
(`parse_status_map_extra`, checked when the settings load). An extra word is
looked up before the built-in table, so it may also correct a built-in row.
A word neither knows is `unknown_status` (transient: the row keeps being polled
at a slow pace while someone maps the word).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from worker.adapters.http import unknown_status
from worker.domain.errors import ConfigurationError
from worker.domain.statuses import VerificationStatus

Outcome = TypeVar("Outcome")

GUESS = "GUESS: "
# Where an operator's extra words come from (the source of their rows).
EXTRA_SOURCE = "operator: KYC_<PROVIDER>_STATUS_MAP_EXTRA"
# A status word an operator may map: a plain word, inner spaces allowed (a few providers
# spell statuses as phrases), no separators (, =), at most MAX_WORD characters.
MAX_WORD = 64
_WORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.: -]*[A-Za-z0-9_.:-])?")
# kyc-poller's own verdict: never a provider's word.
NOT_MAPPABLE = frozenset({VerificationStatus.TIMED_OUT})


@dataclass(frozen=True)
class StatusRow(Generic[Outcome]):
    """What one provider word means, and the document (or GUESS) that says so."""

    outcome: Outcome
    source: str

    def __post_init__(self) -> None:
        if not self.source.strip() or self.source.strip() == GUESS.strip():
            raise ValueError("a status row names its source (a document, or GUESS: why)")

    @property
    def guessed(self) -> bool:
        return self.source.startswith(GUESS)


def documented(outcome: Outcome, source: str) -> StatusRow[Outcome]:
    return StatusRow(outcome, source)


def guessed(outcome: Outcome, why: str) -> StatusRow[Outcome]:
    return StatusRow(outcome, GUESS + why)


class StatusTable(Generic[Outcome]):
    """A provider's words -> outcomes (see the module docstring); immutable."""

    def __init__(
        self,
        provider: str,
        rows: Mapping[str, StatusRow[Outcome]],
        *,
        fold: Callable[[str], str] = str.lower,
        extra: Mapping[str, VerificationStatus] | None = None,
    ) -> None:
        self.provider = provider
        self.fold = fold
        self.rows: Mapping[str, StatusRow[Outcome]] = {fold(w): r for w, r in rows.items()}
        if len(self.rows) != len(rows):
            raise ValueError(f"{provider}: two status words fold to the same key")
        self.extra: Mapping[str, VerificationStatus] = {
            fold(word): status for word, status in (extra or {}).items()
        }

    def with_extra(self, extra: Mapping[str, VerificationStatus]) -> StatusTable[Outcome]:
        """The same table with an operator's words on top."""
        return StatusTable(self.provider, self.rows, fold=self.fold, extra=extra)

    def lookup(self, word: str) -> Outcome | VerificationStatus:
        """The outcome of a provider word (operator's words first); unknown_status otherwise."""
        key = self.fold(word)
        if key in self.extra:
            return self.extra[key]
        row = self.rows.get(key)
        if row is None:
            raise unknown_status(self.provider, word)
        return row.outcome

    def source(self, word: str) -> str | None:
        """Where the meaning of `word` comes from (None: unknown)."""
        key = self.fold(word)
        if key in self.extra:
            return EXTRA_SOURCE
        row = self.rows.get(key)
        return None if row is None else row.source

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        key = self.fold(word)
        return key in self.extra or key in self.rows


def parse_status_map_extra(variable: str, raw: str) -> dict[str, VerificationStatus]:
    """`"WORD=status,WORD2=status"` -> {word: status}; ConfigurationError naming `variable`.

    Words are kept as written (the table folds them); a target must be a normalized
    status other than `timed_out` (kyc-poller's own verdict); a word given twice,
    an empty word or a pair without "=" is refused, so a typo cannot pass silently.
    """
    mapping: dict[str, VerificationStatus] = {}
    if not raw.strip():
        return mapping
    for index, pair in enumerate(raw.split(","), start=1):
        word, equals, target = pair.partition("=")
        word, target = word.strip(), target.strip().lower()
        if not equals or not word or not target:
            raise ConfigurationError(
                f"{variable}: pair {index} must be WORD=status, got {pair.strip()[:40]!r}"
            )
        if len(word) > MAX_WORD or not _WORD.fullmatch(word):
            raise ConfigurationError(
                f"{variable}: pair {index}: {word[:40]!r} is not a status word (letters, digits, "
                f"_ . : - and inner spaces, at most {MAX_WORD} characters)"
            )
        try:
            status = VerificationStatus(target)
        except ValueError:
            status = None
        if status is None or status in NOT_MAPPABLE:
            allowed = ", ".join(s.value for s in VerificationStatus if s not in NOT_MAPPABLE)
            raise ConfigurationError(
                f"{variable}: pair {index}: {target[:40]!r} is not a status a provider word can "
                f"map to ({allowed})"
            )
        if word.lower() in {w.lower() for w in mapping}:
            raise ConfigurationError(f"{variable}: {word[:40]!r} is mapped twice")
        mapping[word] = status
    return mapping
