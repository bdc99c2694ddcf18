"""Runs the evaluation set (questions.yaml) on a chatbot; checks intents, facts, citations and text."""

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.ports import AnomalyRepository
from plantwatch.services.chatbot import ChatbotService, ChatReply

QUESTIONS = Path(__file__).with_name("questions.yaml")
_MISSING = object()


@dataclass(frozen=True)
class Turn:
    question: str
    expected: dict[str, Any]


@dataclass
class Outcome:
    question: str
    intent: str
    seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        return not self.problems


def load_conversations(path: Path = QUESTIONS, with_model: bool = True) -> list[list[Turn]]:
    """Every case as a conversation: a single question is a conversation of one turn. Without the model,
    the cases marked needs_model are left out."""
    cases = yaml.safe_load(path.read_text())["cases"]
    conversations = []
    for index, case in enumerate(cases):
        if case.get("needs_model") and not with_model:
            continue
        turns = case.get("conversation", [case])
        for turn in turns:
            if "question" not in turn or "intent" not in turn:
                raise ValueError(f"{path}: case {index} has a turn without question or intent")
        conversations.append([Turn(t["question"], t) for t in turns])
    return conversations


def _lookup(facts: Any, dotted: str) -> Any:
    value = facts
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def check(reply: ChatReply, expected: dict[str, Any], fixture: dict[str, Anomaly]) -> list[str]:
    problems = []
    if reply.intent.value != expected["intent"]:
        problems.append(f"intent {reply.intent.value!r}, expected {expected['intent']!r}")
        return problems
    for key, want in (expected.get("facts") or {}).items():
        got = _lookup(reply.facts, key)
        if got is _MISSING:
            problems.append(f"fact {key} missing")
        elif got != want:
            problems.append(f"fact {key} = {got!r}, expected {want!r}")
    if "cited" in expected:
        names = {anomaly.id: name for name, anomaly in fixture.items()}
        got_names = sorted(names.get(i, i) for i in reply.cited_anomaly_ids)
        if got_names != sorted(expected["cited"]):
            problems.append(f"cited {got_names}, expected {sorted(expected['cited'])}")
    for text in expected.get("contains") or []:
        if text not in reply.answer:
            problems.append(f"answer lacks {text!r}: {reply.answer}")
    return problems


def run_evaluation(
    chatbot: ChatbotService,
    repository: AnomalyRepository,
    fixture: dict[str, Anomaly],
    conversations: list[list[Turn]],
) -> Iterator[Outcome]:
    ids = {name: anomaly.id for name, anomaly in fixture.items()}
    for conversation in conversations:
        conversation_id = None
        for turn in conversation:
            question = turn.question.format(**ids)
            started = time.perf_counter()
            reply = chatbot.answer(repository, question, conversation_id)
            seconds = time.perf_counter() - started
            conversation_id = reply.conversation_id
            yield Outcome(question, reply.intent.value, seconds, check(reply, turn.expected, fixture))
