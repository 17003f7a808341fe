"""Status words a provider sent that its adapter's table lacks: made loud, and kept bounded.

A word outside a table is `unknown_status` on the row (the raw word, cleaned, in
`provider_status`). For a metric label and a log line it is bounded here:
`word_label` keeps at most LABEL_CHARS characters from a small alphabet, and
`UnknownWords` remembers at most `max_words` labels per provider per process, so
a provider answering a new random word every time costs neither memory nor
metric series: past the cap, every new word is `OTHER_LABEL`.

`UnknownWords.seen` says whether a word is new to this process, which is when the
engine logs it (once per word per process, at WARNING).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

LABEL_CHARS = 40
OTHER_LABEL = "_other"
EMPTY_LABEL = "_empty"
DEFAULT_MAX_WORDS = 20
_OUTSIDE = re.compile(r"[^A-Za-z0-9_.:-]")


def word_label(word: str | None) -> str:
    """`word` as a short, safe label: other characters become "_", at most LABEL_CHARS."""
    text = _OUTSIDE.sub("_", (word or "").strip())[:LABEL_CHARS]
    return text or EMPTY_LABEL


@dataclass(frozen=True)
class Sighting:
    """How one unknown word is reported: its label, and whether this process saw it first now."""

    label: str
    first: bool
    # True on the first word past the cap (the engine says once that it stops naming words).
    capped_now: bool = False


class UnknownWords:
    """The unknown words this process has seen, per provider, at most `max_words` each."""

    def __init__(self, max_words: int = DEFAULT_MAX_WORDS) -> None:
        self.max_words = max(max_words, 1)
        self._words: dict[str, set[str]] = {}
        self._capped: set[str] = set()
        self._lock = threading.Lock()

    def seen(self, provider: str, word: str | None) -> Sighting:
        label = word_label(word)
        with self._lock:
            known = self._words.setdefault(provider, set())
            if label in known:
                return Sighting(label, first=False)
            if len(known) < self.max_words:
                known.add(label)
                return Sighting(label, first=True)
            capped_now = provider not in self._capped
            self._capped.add(provider)
            return Sighting(OTHER_LABEL, first=False, capped_now=capped_now)

    def words(self, provider: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self._words.get(provider, ()))
