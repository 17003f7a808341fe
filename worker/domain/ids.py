"""Validation of the ids apps hand us, before anything is stored or sent anywhere.

An external id ends up in a URL path and in logs, so only plain tokens are
accepted: letters, digits and . _ : - (no slashes, no '..', no spaces or
control characters), at most 128 characters. Surrounding whitespace is refused,
not stripped: an id is compared byte for byte, so what an app sends is what is
stored. Adapters may canonicalize further (Predicate lower-cases its UUIDs).
"""

from __future__ import annotations

import re

from worker.domain.errors import InvalidExternalIdError

MAX_EXTERNAL_ID_LENGTH = 128
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


def validate_external_id(external_id: object) -> str:
    """Return `external_id` unchanged if it is a plain token, else raise with the reason."""
    if not isinstance(external_id, str):
        raise InvalidExternalIdError(
            f"external id must be a string, got {type(external_id).__name__}"
        )
    if external_id == "":
        raise InvalidExternalIdError("external id must not be empty")
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise InvalidExternalIdError(
            f"external id is {len(external_id)} characters long; "
            f"at most {MAX_EXTERNAL_ID_LENGTH} are allowed"
        )
    if ".." in external_id:
        raise InvalidExternalIdError("external id must not contain '..'")
    if not _PLAIN_TOKEN.fullmatch(external_id):
        raise InvalidExternalIdError(
            "external id must be a plain token: letters, digits and . _ : - "
            f"(starting with a letter or digit), got {external_id!r}"
        )
    return external_id
