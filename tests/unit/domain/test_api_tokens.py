"""API tokens: hashed configuration, constant-time lookup, scopes."""

from __future__ import annotations

import pytest

from worker.domain.api_tokens import (
    Scope,
    authenticate,
    bearer_token,
    digest_of,
    new_token,
    parse_tokens,
)


def test_tokens_are_configured_by_their_hash_and_found_by_the_token():
    app, ops = new_token(), new_token()
    assert app != ops and app.startswith("kyc_") and len(app) > 40
    tokens = parse_tokens(f"app:track+read:{digest_of(app)}, ops:read:{digest_of(ops).upper()}")
    assert authenticate(app, tokens).name == "app"
    assert authenticate(app, tokens).scopes == {Scope.TRACK, Scope.READ}
    assert authenticate(ops, tokens).scopes == {Scope.READ}
    assert authenticate(digest_of(app), tokens) is None  # the hash itself is no token
    assert authenticate("kyc_wrong", tokens) is None
    assert authenticate(None, tokens) is None
    assert digest_of(app) not in repr(tokens)


def test_a_token_file_may_hold_one_entry_per_line_with_comments():
    text = f"# apps\napp:track:{'a' * 64}\n\nops:read:{'b' * 64}\n"
    assert [token.name for token in parse_tokens(text)] == ["app", "ops"]


@pytest.mark.parametrize(
    "text",
    [
        "app:track",
        f"app:write:{'a' * 64}",
        f"app::{'a' * 64}",
        "app:read:abc",
        f"bad name:read:{'a' * 64}",
        f"a:read:{'a' * 64},a:track:{'b' * 64}",
        f"a:read:{'a' * 64},b:track:{'a' * 64}",
    ],
)
def test_bad_entries_are_refused_without_quoting_the_hash(text):
    with pytest.raises(ValueError) as caught:
        parse_tokens(text)
    assert "a" * 64 not in str(caught.value)


def test_bearer_headers():
    assert bearer_token("Bearer kyc_abc") == "kyc_abc"
    assert bearer_token("bearer   kyc_abc ") == "kyc_abc"
    for bad in (None, "", "Basic abc", "Bearer", "Bearer " + "x" * 600):
        assert bearer_token(bad) is None
