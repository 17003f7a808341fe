"""The demo speaks the providers' documented words, so it fails when a table misreads one."""

from __future__ import annotations

from devkit.demo_scenarios import demo_scenarios
from devkit.fake_providers import bank131, gu1, notus, predicate

VOCABULARIES = {
    "notus": notus.DOCUMENTED_STATUSES,
    "bank131": bank131.DOCUMENTED_STATUSES,
    "gu1": gu1.DOCUMENTED_STATUSES,
    "predicate": predicate.DOCUMENTED_STATUSES,
}


def _words(script: list[object]) -> set[str]:
    words = set()
    for step in script:
        if isinstance(step, str):
            words.add(step)
        elif isinstance(step, dict):
            for key in ("status", "after_sync"):
                if isinstance(step.get(key), str):
                    words.add(step[key])
    return words


def test_every_scripted_word_is_a_documented_word_of_its_provider():
    scenarios = demo_scenarios("12345678")
    for scenario in scenarios:
        unknown = _words(scenario.script) - set(VOCABULARIES[scenario.provider])
        assert not unknown, (scenario.provider, scenario.external_id, unknown)
    assert {s.provider for s in scenarios} == set(VOCABULARIES)
