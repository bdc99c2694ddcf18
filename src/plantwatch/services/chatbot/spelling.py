"""Typo repair before parsing: a misspelt domain word ("yesterdy", "machin", "critcal", "cbyer") becomes
the word the parser knows, by rapidfuzz similarity against a closed vocabulary.

Only words that are not already known English words are candidates, only close matches are taken (so "were"
never becomes "week" and "hours" never "house"), and words with digits are left alone: P103 is a tag of its
own, not a typo of P101.
"""

import re
from collections.abc import Iterable

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

# The words the parser's patterns are written with: time words, module words, severities and the operation
# keywords the intent rules look for.


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


DOMAIN_WORDS = _words(
    "yesterday today tonight tomorrow morning afternoon evening night week weeks month months year years "
    "hour hours minute minutes days since between until before after ago previous latest earliest recent "
    "oldest newest "
    "monday tuesday wednesday thursday friday saturday sunday "
    "january february march april june july august september october november december "
    "energy machine machines cyber security network attack attacks intrusion "
    "critical severity medium severe serious moderate "
    "anomaly anomalies alert alerts alarm alarms incident incidents problems issues faults "
    "compare comparison versus highest lowest maximum minimum average share percentage proportion "
    "percent trend trending increasing decreasing rising falling summary overview explain sensor sensors "
    "feature features cause causes culprit involved first second third"
)

# Correct English words that sit close to a domain word: never "repaired".
_KEEP = set(
    _words(
        "were where week weak with what when which there their these those those house mouth most must more "
        "many much made make mean means show shown same some time times than then them they this that have "
        "last least list lists late later about above after again among another anything around because "
        "being below both could each even every from into just like only other over same should such take "
        "tell under very want well will would your given level levels value values total score scores high "
        "higher low lower rate rates count counts order ordered other others state status plant plants "
        "period periods range ranges minus points point second seconds moment number numbers months machined "
        "day hour any all and the for are was how who why new old top one two six ten big did does has had "
        "its not now yet per via off out own get got let may can say see set use way few far ask near"
    )
)
_WORD = re.compile(r"\b[A-Za-z][A-Za-z_]{2,}\b")
# A repair must be this similar (0-100, rapidfuzz's normalised Indel similarity).
MIN_SIMILARITY = 85.0
MIN_SIMILARITY_LONG = 80.0


class SpellingRepair:
    """Replaces near-misses of known words; `extra` adds names such as the loaded models' sensors."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        names = (word.lower() for word in extra if len(word) >= 4 and not any(c.isdigit() for c in word))
        self.vocabulary = sorted({*DOMAIN_WORDS, *names})
        self._known = set(self.vocabulary) | _KEEP
        self._by_letters: dict[str, list[str]] = {}
        for known in self.vocabulary:
            self._by_letters.setdefault("".join(sorted(known)), []).append(known)
        self._cache: dict[str, str] = {}

    def repair(self, text: str) -> str:
        """`text` with each misspelt domain word replaced (in lower case); everything else kept as it is."""
        return _WORD.sub(lambda match: self._word(match.group(0)), text)

    def _word(self, written: str) -> str:
        word = written.lower()
        if word in self._known:
            return written
        if word not in self._cache:
            # Longer words stay recognisable with two letters swapped ("eneryg" is 83 % "energy").
            cutoff = MIN_SIMILARITY if len(word) < 6 else MIN_SIMILARITY_LONG
            best = process.extractOne(word, self.vocabulary, scorer=fuzz.ratio, score_cutoff=cutoff)
            if best is None:
                # Two neighbouring letters swapped ("cbyer") costs short words too much similarity: accept
                # exactly that edit.
                swapped = [
                    known
                    for known in self._by_letters.get("".join(sorted(word)), [])
                    if OSA.distance(word, known) == 1
                ]
                best = (swapped[0], 100.0, 0) if len(swapped) == 1 else None
            if len(self._cache) > 10_000:  # bounded: questions are user input
                self._cache.clear()
            self._cache[word] = best[0] if best is not None else ""
        return self._cache[word] or written
