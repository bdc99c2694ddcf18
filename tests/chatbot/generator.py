"""Questions generated from a grammar (operations × modules × time expressions × severities × paraphrases ×
typos) over a generated store, with the expected answers computed here, independently of the chatbot: the
generator knows the period, modules and severities behind every phrase it writes, and filters the anomaly
list with plain Python.

Each question falls in one of two splits by a hash of its text: `tuning` (look at its failures, adjust the
chatbot) and `held_back` (run for the report only; never used to tune).
"""

import random
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from plantwatch.domain.anomaly import Anomaly, FeatureContribution, Severity, severity_for
from plantwatch.domain.modules import Module
from tests.chatbot.fixture_store import FEATURE_NAMES
from tests.fakes import InMemoryAnomalyRepository

NOW = datetime(2024, 3, 14, 12, 0)  # a Thursday
FIRST_DAY = datetime(2024, 1, 1)
TUNING, HELD_BACK = "tuning", "held_back"
Period = tuple[datetime | None, datetime | None]


@dataclass(frozen=True)
class GeneratedQuestion:
    text: str
    operation: str
    expected: dict[str, Any]
    """Expected facts by dotted key (as in questions.yaml)."""
    cited: frozenset[str] | None
    """The exact ids the reply must cite, where the operation cites a known set."""
    template: str
    split: str = field(default="")


def build_generated_anomalies(seed: int = 14, per_module: int = 150) -> list[Anomaly]:
    """Anomalies at whole minutes from 2024-01-01 to just before NOW, with random scores and causes."""
    rng = random.Random(seed)
    span_minutes = int((NOW - FIRST_DAY).total_seconds() // 60)
    anomalies: dict[str, Anomaly] = {}
    for module in Module:
        features = FEATURE_NAMES[module]
        threshold = {Module.ENERGY: 1.0, Module.MACHINE: 2.0, Module.CYBER: 0.5}[module]
        # a denser last fortnight, so "today" and "yesterday" hold anomalies
        minutes = [rng.randrange(span_minutes) for _ in range(per_module - 40)]
        minutes += [span_minutes - rng.randrange(14 * 24 * 60) - 1 for _ in range(40)]
        for minute in minutes:
            end = FIRST_DAY + timedelta(minutes=minute)
            score = round(
                threshold * rng.choice([1.05, 1.1, 1.4, 1.7, 2.2, 3.0, 4.5, 6.0]) * rng.uniform(1, 1.1), 4
            )
            causes = rng.sample(features, k=rng.randint(1, 3))
            anomaly = Anomaly(
                module=module,
                source=f"{module.value}-src",
                window_start=end - timedelta(minutes=5),
                window_end=end,
                score=score,
                threshold=threshold,
                root_cause=tuple(
                    FeatureContribution(f, round(8.0 / (rank + 1), 2), 1.0, 0.5)
                    for rank, f in enumerate(causes)
                ),
                model_name="pca",
                model_version="v1",
                detected_at=end,
                severity=severity_for(score, threshold),
            )
            anomalies[anomaly.id] = anomaly
    return list(anomalies.values())


def build_generated_store() -> tuple[InMemoryAnomalyRepository, list[Anomaly]]:
    anomalies = build_generated_anomalies()
    repository = InMemoryAnomalyRepository()
    repository.add_many(anomalies)
    return repository, anomalies


# --- the grammar's pieces ---------------------------------------------------------------------------------

_MIDNIGHT = datetime.combine(NOW.date(), time(0))
_MONDAY = _MIDNIGHT - timedelta(days=NOW.weekday())


def _time_phrases() -> list[tuple[str, Period]]:
    return [
        ("", (None, None)),
        ("today", (_MIDNIGHT, _MIDNIGHT + timedelta(days=1))),
        ("yesterday", (_MIDNIGHT - timedelta(days=1), _MIDNIGHT)),
        ("this week", (_MONDAY, _MONDAY + timedelta(days=7))),
        ("last week", (_MONDAY - timedelta(days=7), _MONDAY)),
        ("in the last 24 hours", (NOW - timedelta(hours=24), None)),
        ("in the last 6 hours", (NOW - timedelta(hours=6), None)),
        ("in the past 3 days", (NOW - timedelta(days=3), None)),
        ("in the past 30 days", (NOW - timedelta(days=30), None)),
        ("since Monday", (_MONDAY, None)),
        ("in February", (datetime(2024, 2, 1), datetime(2024, 3, 1))),
        ("in January 2024", (datetime(2024, 1, 1), datetime(2024, 2, 1))),
        ("last month", (datetime(2024, 2, 1), datetime(2024, 3, 1))),
        ("this month", (datetime(2024, 3, 1), None)),
        ("on March 5", (datetime(2024, 3, 5), datetime(2024, 3, 6))),
        ("on 2024-02-14", (datetime(2024, 2, 14), datetime(2024, 2, 15))),
        ("between February 1 and February 10", (datetime(2024, 2, 1), datetime(2024, 2, 11))),
        ("from March 1 to March 7", (datetime(2024, 3, 1), datetime(2024, 3, 8))),
        (
            "between 08:00 and 18:00 on 2024-03-12",
            (datetime(2024, 3, 12, 8), datetime(2024, 3, 12, 18)),
        ),
    ]


_SEVERITY_PHRASES: list[tuple[str, frozenset[Severity]]] = [
    ("", frozenset()),
    ("critical ", frozenset({Severity.CRITICAL})),
    ("high severity ", frozenset({Severity.HIGH, Severity.CRITICAL})),
    ("high or critical ", frozenset({Severity.HIGH, Severity.CRITICAL})),
    ("low or medium ", frozenset({Severity.LOW, Severity.MEDIUM})),
    ("only high ", frozenset({Severity.HIGH})),
    ("medium ", frozenset({Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL})),
]
# The share questions name the subset after "are"
_SHARE_SUBSETS: list[tuple[str, frozenset[Severity]]] = [
    ("critical", frozenset({Severity.CRITICAL})),
    ("high or critical", frozenset({Severity.HIGH, Severity.CRITICAL})),
    ("low or medium", frozenset({Severity.LOW, Severity.MEDIUM})),
    ("high severity", frozenset({Severity.HIGH, Severity.CRITICAL})),
]


def _module_phrases(module: Module | None, rng: random.Random) -> tuple[str, str]:
    """(a prepositional phrase, an adjective) for the module; both empty for all modules."""
    if module is None:
        return "", ""
    return rng.choice([f"in {module.value}", f"in the {module.value} module", f"for {module.value}"]), (
        f"{module.value} "
    )


_TEMPLATES: dict[str, list[str]] = {
    "count": [
        "how many {sev}anomalies {mod} {time}?",
        "count the {sev}anomalies {mod} {time}",
        "how many {sev}{adj}alerts were there {time}",
        "number of {sev}{adj}anomalies {time}",
    ],
    "latest": [
        "show me the last {n} {sev}{adj}anomalies",
        "list the {n} most recent {sev}anomalies {mod}",
        "what were the latest {n} {sev}{adj}alerts",
    ],
    "first": [
        "when was the first {sev}{adj}anomaly {time}?",
        "show the earliest {sev}{adj}alert {time}",
        "what was the oldest {sev}anomaly {mod} {time}",
    ],
    "highest": [
        "what was the highest anomaly score {mod} {time}?",
        "which {adj}anomaly had the maximum score {time}",
        "show the top scoring {adj}anomaly {time}",
    ],
    "lowest": [
        "what was the lowest anomaly score {mod} {time}?",
        "which {adj}anomaly had the minimum score {time}",
    ],
    "share": [
        "what share of {adj}anomalies are {subset} {time}?",
        "what percentage of the anomalies {mod} are {subset} {time}",
        "what proportion of {adj}alerts {time} are {subset}",
    ],
    "compare_modules": [
        "compare {m1} and {m2} {time}",
        "are there more anomalies in {m1} than in {m2} {time}?",
        "compare the number of anomalies in {m1} and {m2} {time}",
    ],
    "top_cause": [
        "which sensor is most often the root cause {mod} {time}",
        "what is the most common root cause {mod} {time}",
        "top root causes {mod} {time}",
    ],
}
_OPERATION_INTENT = {
    "count": "list_anomalies",
    "latest": "latest_anomaly",
    "first": "first_anomaly",
    "highest": "highest_score",
    "lowest": "lowest_score",
    "share": "share",
    "compare_modules": "compare_modules",
    "top_cause": "top_root_cause",
}
_TYPO_TARGETS = frozenset(
    [
        "anomalies",
        "anomaly",
        "alerts",
        "yesterday",
        "february",
        "january",
        "compare",
        "critical",
        "highest",
        "lowest",
        "maximum",
        "minimum",
        "percentage",
        "proportion",
        "earliest",
        "energy",
        "machine",
        "cyber",
        "severity",
        "recent",
        "oldest",
        "sensor",
    ]
)


def _typo(text: str, rng: random.Random) -> str | None:
    """One misspelt domain word: a letter dropped or two neighbours swapped (not the first letter)."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if w.strip("?") in _TYPO_TARGETS]
    if not candidates:
        return None
    index = rng.choice(candidates)
    word = words[index].rstrip("?")
    tail = words[index][len(word) :]
    position = rng.randrange(1, len(word) - 1)
    if rng.random() < 0.5:
        word = word[:position] + word[position + 1 :]
    else:
        word = word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    words[index] = word + tail
    return " ".join(words)


# --- the oracle: plain filtering of the anomaly list -------------------------------------------------------


def _select(
    anomalies: list[Anomaly], modules: set[Module] | None, period: Period, severities: frozenset[Severity]
) -> list[Anomaly]:
    start, end = period
    return [
        a
        for a in anomalies
        if (modules is None or a.module in modules)
        and (start is None or a.window_end >= start)
        and (end is None or a.window_end < end)
        and (not severities or a.severity in severities)
    ]


def _newest_first(anomalies: list[Anomaly]) -> list[Anomaly]:
    return sorted(anomalies, key=lambda a: (a.window_end, a.id), reverse=True)


def _expect(
    operation: str,
    anomalies: list[Anomaly],
    modules: list[Module],
    period: Period,
    severities: frozenset[Severity],
    n: int,
) -> tuple[dict[str, Any], frozenset[str] | None]:
    scope = set(modules) if modules else None
    chosen = _select(anomalies, scope, period, severities)
    if operation == "count":
        return {"count": len(chosen)}, frozenset(a.id for a in chosen) if chosen else None
    if operation in ("latest", "first", "highest", "lowest"):
        if not chosen:
            return {"count": 0}, None
        newest = _newest_first(chosen)
        if operation == "latest":
            picked = newest[:n]
        elif operation == "first":
            picked = sorted(chosen, key=lambda a: (a.window_end, a.id))[:1]
        else:
            # a stable sort of the newest-first list keeps "newest first" as the tie-break
            picked = sorted(newest, key=lambda a: a.score, reverse=operation == "highest")[:1]
        expected: dict[str, Any] = {"anomaly_id": picked[0].id}
        if operation == "latest":
            expected["anomalies"] = [a.id for a in picked]
        return expected, frozenset(a.id for a in picked)
    if operation == "share":
        whole = _select(anomalies, scope, period, frozenset())
        part = [a for a in whole if a.severity in severities]
        if not whole:
            return {"count": 0}, None
        return {
            "part": len(part),
            "total": len(whole),
            "share_pct": round(100 * len(part) / len(whole), 1),
        }, frozenset(a.id for a in part)
    if operation == "compare_modules":
        counts = {m.value: len(_select(anomalies, {m}, period, severities)) for m in modules}
        return {f"counts.{m}": n for m, n in counts.items()}, None
    # top_cause
    tops = Counter(a.top_feature for a in chosen if a.top_feature)
    if not tops:
        return {"count": 0}, None
    best = max(tops.values())
    return {
        "top_feature_count": best,
        "tied": sorted(f for f, c in tops.items() if c == best),
        "count": len(chosen),
    }, None


def _split(text: str) -> str:
    return HELD_BACK if zlib.crc32(text.encode()) % 2 else TUNING


def generate(anomalies: list[Anomaly], count: int = 1000, seed: int = 1400) -> list[GeneratedQuestion]:
    """`count` distinct questions (fewer if the grammar runs out), each with its split."""
    rng = random.Random(seed)
    times = _time_phrases()
    seen: dict[str, GeneratedQuestion] = {}
    attempts = 0
    while len(seen) < count and attempts < count * 20:
        attempts += 1
        operation = rng.choice(list(_TEMPLATES))
        template = rng.choice(_TEMPLATES[operation])
        time_phrase, period = rng.choice(times)
        severity_phrase, severities = rng.choice(_SEVERITY_PHRASES)
        module = rng.choice([None, *Module])
        modules = [module] if module else []
        n = rng.choice([2, 3, 5])
        subset = ""
        if operation in ("highest", "lowest", "top_cause"):
            severity_phrase, severities = "", frozenset()
        if operation == "latest":
            time_phrase, period = "", (None, None)
        if operation == "share":
            subset, severities = rng.choice(_SHARE_SUBSETS)
            severity_phrase = ""
        m1, m2 = rng.sample(list(Module), 2)
        if operation == "compare_modules":
            modules, severity_phrase, severities = [m1, m2], "", frozenset()
        mod, adj = _module_phrases(module, rng)
        if operation != "compare_modules" and "{mod}" not in template and "{adj}" not in template:
            modules = []
        if "{adj}" in template and "{mod}" not in template:
            mod = ""
        if "{mod}" in template and "{adj}" not in template:
            adj = ""
        if module is not None and "{mod}" not in template and "{adj}" not in template:
            modules = []
        text = template.format(
            sev=severity_phrase,
            mod=mod,
            adj=adj,
            time=time_phrase,
            n=n,
            subset=subset,
            m1=m1.value,
            m2=m2.value,
        )
        text = " ".join(text.split()).replace(" ?", "?")
        if rng.random() < 0.25:
            text = _typo(text, rng) or text
        if text in seen:
            continue
        expected, cited = _expect(operation, anomalies, modules, period, severities, n)
        seen[text] = GeneratedQuestion(
            text=text,
            operation=_OPERATION_INTENT[operation],
            expected=expected,
            cited=cited,
            template=f"{operation}: {template}",
            split=_split(text),
        )
    return list(seen.values())


def check_reply(
    question: GeneratedQuestion, intent: str, facts: dict[str, Any], cited: list[str]
) -> list[str]:
    """What is wrong with a reply to a generated question; empty when it is right."""
    if intent != question.operation:
        return [f"intent {intent!r}, expected {question.operation!r}"]
    problems = []
    for key, want in question.expected.items():
        got = _lookup(facts, key)
        if key == "anomalies":
            got = [a["anomaly_id"] for a in got] if isinstance(got, list) else got
        if got != want:
            problems.append(f"{key} = {got!r}, expected {want!r}")
    if question.cited is not None and set(cited) != question.cited:
        problems.append(f"cited {len(cited)} ids, expected {len(question.cited)}")
    return problems


def _lookup(facts: Any, dotted: str) -> Any:
    value = facts
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return "<missing>"
        value = value[part]
    return value


def split_questions(questions: list[GeneratedQuestion], split: str) -> Iterator[GeneratedQuestion]:
    return (q for q in questions if q.split == split)
