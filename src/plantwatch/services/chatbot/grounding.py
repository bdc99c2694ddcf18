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


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(?<![\d:.])(\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?")


def _split(text: str) -> tuple[set[str], set[str], str]:
    """Dates, times of day (HH:MM) and the rest of the text. Ids are dropped: their digits are not figures,
    and dates and times are compared whole, so "12" is not grounded by a time of 12:00."""
    text = _UUID.sub(" ", text)
    dates = set(_DATE.findall(text))
    text = _DATE.sub(" ", text)
    times = {f"{int(hour):02d}:{minute}" for hour, minute in _TIME.findall(text)}
    return dates, times, _TIME.sub(" ", text)


def numbers_in(text: str) -> list[str]:
    """Digit runs (with decimals) and number words; a date or a time gives its parts (2024, 03, 14)."""
    return _NUMBER.findall(text.replace(",", "")) + [m.group(1).lower() for m in _WORD.finditer(text)]


def _value(token: str) -> float:
    return float(_NUMBER_WORDS[token]) if token in _NUMBER_WORDS else float(token)


def _decimals(token: str) -> int:
    return len(token.split(".")[1]) if "." in token else 0


def ungrounded_numbers(candidate: str, template: str, facts: Mapping[str, Any]) -> list[str]:
    """The numbers, dates and times in `candidate` that neither the template answer nor the facts contain.

    A decimal may round a grounded one to the precision it is written with (3.1 for 3.14); a whole number
    must be grounded as it is, so a count cannot pass as the rounding of a ratio.
    """
    dates, times, rest = _split(template + " " + json.dumps(facts, default=str))
    grounded = [_value(t) for t in numbers_in(rest)]
    candidate_dates, candidate_times, candidate_rest = _split(candidate)
    missing = sorted(candidate_dates - dates) + sorted(candidate_times - times)
    for token in numbers_in(candidate_rest):
        value, places = _value(token), _decimals(token)
        if not any(value == g or (0 < places < 3 and round(g, places) == value) for g in grounded):
            missing.append(token)
    return missing
