"""Keeps a rephrased answer honest: each of its numbers must be in the grounded facts or the template."""

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "dozen": 12, "hundred": 100,
    "thousand": 1000, "half": 0.5, "twice": 2, "double": 2, "triple": 3,
}  # fmt: skip
_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


class AnswerRephraser(Protocol):
    """Turns a template answer into friendlier prose. None when it cannot (unreachable, timed out)."""

    def rephrase(self, question: str, answer: str, facts: Mapping[str, Any]) -> str | None: ...


def numbers_in(text: str) -> list[str]:
    """Digit runs (with decimals) and number words; a date or a time gives its parts (2024, 03, 14)."""
    return _NUMBER.findall(text.replace(",", "")) + [m.group(1).lower() for m in _WORD.finditer(text)]


def _value(token: str) -> float:
    return float(_NUMBER_WORDS[token]) if token in _NUMBER_WORDS else float(token)


def _decimals(token: str) -> int:
    return len(token.split(".")[1]) if "." in token else 0


def ungrounded_numbers(candidate: str, template: str, facts: Mapping[str, Any]) -> list[str]:
    """The numbers in `candidate` that neither the template answer nor the facts contain.

    A number may round a grounded one to the precision it is written with (3.1 for 3.14), never more.
    """
    grounded = [_value(t) for t in numbers_in(template) + numbers_in(json.dumps(facts, default=str))]
    missing = []
    for token in numbers_in(candidate):
        value, places = _value(token), _decimals(token)
        if not any(value == g or (places < 3 and round(g, places) == value) for g in grounded):
            missing.append(token)
    return missing
