"""The public vocabularies (error codes, reasons, statuses) and the README agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from worker.domain.errors import (
    DECISION_CODES,
    PERMANENT_CODES,
    PROVIDER_WIDE_CODES,
    TRANSIENT_CODES,
    ErrorCode,
    KycPollerError,
    PermanentProviderError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    RequestRejected,
    TransientProviderError,
    TransitionReason,
)
from worker.domain.statuses import TERMINAL_STATUSES, VerificationStatus

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
KINDS = {
    "provider-wide": PROVIDER_WIDE_CODES,
    "transient": TRANSIENT_CODES,
    "permanent": PERMANENT_CODES,
    "decisions": DECISION_CODES,
}


def readme_row(label: str) -> set[str]:
    match = re.search(rf"^\| {re.escape(label)} \| (.+) \|$", README, re.MULTILINE)
    assert match, f"README has no error-code row {label!r}"
    return set(re.findall(r"`([a-z_]+)`", match.group(1)))


def test_every_error_code_has_exactly_one_kind():
    kinds = list(KINDS.values())
    assert set().union(*kinds) == set(ErrorCode)
    assert sum(len(kind) for kind in kinds) == len(ErrorCode)


@pytest.mark.parametrize("label", list(KINDS))
def test_the_readme_lists_each_kind_of_code(label):
    assert readme_row(label) == {code.value for code in KINDS[label]}


def test_the_readme_lists_the_transition_reasons():
    match = re.search(r"Transition reasons \(.*?\): (.+?)\.\n", README, re.DOTALL)
    assert match
    assert set(re.findall(r"`([a-z_]+)`", match.group(1))) == {r.value for r in TransitionReason}


def test_the_readme_lists_the_statuses():
    section = README[README.index("### Normalized statuses") :]
    polled, terminal = section.split("are polled;", 1)
    assert set(re.findall(r"`([a-z_]+)`", polled)) == {
        s.value for s in VerificationStatus if not s.is_terminal
    }
    terminal_words = set(re.findall(r"`([a-z_]+)`", terminal.split("are terminal")[0]))
    assert terminal_words == {s.value for s in TERMINAL_STATUSES}


def test_errors_share_one_root_and_classes_match_their_kind():
    for cls in (ProviderError, RequestRejected):
        assert issubclass(cls, KycPollerError)
    assert issubclass(RequestRejected, ValueError)
    assert ProviderUnavailableError(ErrorCode.TIMEOUT, "x").provider_wide
    assert not ProviderUnavailableError(ErrorCode.TIMEOUT, "x").permanent
    assert PermanentProviderError(ErrorCode.NOT_FOUND, "x").permanent
    assert not RateLimitedError(ErrorCode.RATE_LIMITED, "x").provider_wide
    assert not TransientProviderError(ErrorCode.UNKNOWN_STATUS, "x").permanent
    with pytest.raises(ValueError):
        ProviderError("no_such_code", "x")  # type: ignore[arg-type]


def test_the_readme_shows_the_default_schedule_as_the_code_has_it():
    from worker.domain.schedule import DEFAULT_PLAN, render_markdown_table

    assert render_markdown_table(DEFAULT_PLAN).strip() in README


def test_every_variable_the_code_reads_is_in_the_readme():
    root = Path(__file__).resolve().parents[2]
    sources = [*root.glob("worker/**/*.py"), *root.glob("tasks/*.py"), root / "celeryconfig.py"]
    pattern = re.compile(r'"((?:KYC|NOTUS|BANK131|GU1|PREDICATE)_[A-Z0-9_]*[A-Z0-9])"')
    names = {name for path in sources for name in pattern.findall(path.read_text())}
    names = {name for name in names if not name.endswith("_SCHEDULE")}  # the schedule prefix
    assert len(names) > 40
    assert sorted(name for name in names if f"`{name}`" not in README) == []
