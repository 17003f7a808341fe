import pytest

from worker.domain.errors import InvalidExternalIdError
from worker.domain.ids import MAX_EXTERNAL_ID_LENGTH, validate_external_id


@pytest.mark.parametrize(
    "external_id",
    ["7", "abc-DEF_123", "550e8400-e29b-41d4-a716-446655440000", "a.b:c", "x" * 128],
)
def test_plain_tokens_are_accepted(external_id):
    assert validate_external_id(external_id) == external_id


@pytest.mark.parametrize(
    ("external_id", "reason"),
    [
        ("", "empty"),
        ("../etc/passwd", "'..'"),
        ("a..b", "'..'"),
        ("a/b", "plain token"),
        ("a b", "plain token"),
        ("a\nb", "plain token"),
        ("a\x00b", "plain token"),
        ("a\tb", "plain token"),
        ("%2e%2e", "plain token"),
        ("a?x=1", "plain token"),
        ("a#frag", "plain token"),
        ("-leading-dash", "plain token"),
        (".hidden", "plain token"),
        ("ünïcode", "plain token"),
        ("x" * (MAX_EXTERNAL_ID_LENGTH + 1), "at most 128"),
    ],
)
def test_hostile_ids_are_rejected_with_the_reason(external_id, reason):
    with pytest.raises(InvalidExternalIdError, match=reason):
        validate_external_id(external_id)


@pytest.mark.parametrize("external_id", [None, 7, b"abc", ["a"]])
def test_non_strings_are_rejected(external_id):
    with pytest.raises(InvalidExternalIdError, match="must be a string"):
        validate_external_id(external_id)
