"""The credentials the fakes accept: the same defaults docker-compose.yml gives the workers."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NOTUS_API_KEY = "notus-test-key"
DEFAULT_BANK131_PROJECT = "kyc-poller"
DEFAULT_BANK131_SIGNING_SECRET = "bank131-test-secret"
DEFAULT_GU1_API_KEY = "gu1-test-key"
DEFAULT_PREDICATE_API_KEY = "predicate-test-key"


@dataclass(frozen=True)
class FakeCredentials:
    """What each fake provider checks on every status request."""

    notus_api_key: str = DEFAULT_NOTUS_API_KEY
    bank131_project: str = DEFAULT_BANK131_PROJECT
    bank131_signing_secret: str = DEFAULT_BANK131_SIGNING_SECRET
    gu1_api_key: str = DEFAULT_GU1_API_KEY
    predicate_api_key: str = DEFAULT_PREDICATE_API_KEY
