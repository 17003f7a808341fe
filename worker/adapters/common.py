"""Small steps every adapter takes the same way: bearer credentials, plain ids, status lookup."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from worker.adapters.contract import ProviderSettings
from worker.adapters.http import unknown_status
from worker.domain.ids import validate_external_id

Outcome = TypeVar("Outcome")


@dataclass(frozen=True)
class ApiKeySettings(ProviderSettings):
    """A provider authenticated by one API key (`<PREFIX>_API_KEY`)."""

    api_key: str = field(default="", repr=False)


def plain_id(external_id: object) -> str:
    """The canonical form of a plain-token id: the token itself (see worker.domain.ids)."""
    return validate_external_id(external_id)


def lookup_status(
    provider: str,
    word: str,
    table: Mapping[str, Outcome],
    fold: Callable[[str], str] = str.lower,
) -> Outcome:
    """The table's entry for a provider's status word (case folded), else unknown_status."""
    outcome = table.get(fold(word))
    if outcome is None:
        raise unknown_status(provider, word)
    return outcome
