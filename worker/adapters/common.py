"""Small steps every adapter takes the same way: credentials, id checks, status lookup."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from worker.adapters.base import PermanentProviderError, ProviderConfigurationError
from worker.adapters.http import unknown_status
from worker.domain.ids import validate_external_id

Outcome = TypeVar("Outcome")


def require_api_key(provider: str, api_key: str, variable: str) -> str:
    """The configured API key; ProviderConfigurationError naming the variable when empty."""
    if not api_key:
        raise ProviderConfigurationError(f"{provider} has no API key configured ({variable})")
    return api_key


def validate_untyped_id(provider: str, external_id: str, verification_type: str | None) -> None:
    """A plain-token id at a provider that has no verification types."""
    validate_external_id(external_id)
    if verification_type:
        raise ValueError(f"{provider} has no verification types; got type {verification_type!r}")


def refuse_invalid_id(
    validate: Callable[[str, str | None], None], external_id: str, verification_type: str | None
) -> None:
    """Re-check an id before it goes into a URL; a bad one is a permanent error, not a request."""
    try:
        validate(external_id, verification_type)
    except ValueError as exc:
        raise PermanentProviderError("invalid_external_id", str(exc)) from None


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
