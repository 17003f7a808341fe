"""Small steps every adapter takes the same way: API-key credentials, plain ids."""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.adapters.contract import ProviderSettings
from worker.domain.ids import validate_external_id


@dataclass(frozen=True)
class ApiKeySettings(ProviderSettings):
    """A provider authenticated by one API key (`<PREFIX>_API_KEY`)."""

    api_key: str = field(default="", repr=False)


def plain_id(external_id: object) -> str:
    """The canonical form of a plain-token id: the token itself (see worker.domain.ids)."""
    return validate_external_id(external_id)
