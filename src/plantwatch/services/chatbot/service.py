"""The chatbot use case: question in, grounded answer out.

Understand (intent + slots), follow up on the conversation's previous turn, query the store, compose the
answer from the results, optionally let a rephraser reword it (kept only when it adds no number of its own).
"""

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.errors import InvalidInputError
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyRepository
from plantwatch.services.chatbot import queries
from plantwatch.services.chatbot.answers import HANDLERS, Context, Draft
from plantwatch.services.chatbot.grounding import AnswerRephraser, ungrounded_numbers
from plantwatch.services.chatbot.intents import Intent, IntentClassifier
from plantwatch.services.chatbot.memory import ConversationMemory, Turn
from plantwatch.services.chatbot.slots import SlotParser, Slots

MAX_QUESTION_CHARS = 500

# A turn that opens like this continues the previous one ("and yesterday?", "what about machine?").
_FOLLOW_UP = re.compile(r"^\s*(and|what about|how about|same for|also|then|now)\b", re.IGNORECASE)
_REFERS_BACK = re.compile(r"\b(it|that|this|those|them|that one|this one)\b", re.IGNORECASE)
# Below this, an intent guess on a follow-up is weaker than the conversation's own intent.
_OWN_INTENT_CONFIDENCE = 0.85


class TimeAnchor(StrEnum):
    """What relative periods ("last 24 h", "today") count back from.

    clock: the wall clock (live plants). latest: the newest anomaly in the store (replayed historical data
    sets, where counting back from today would find nothing).
    """

    CLOCK = "clock"
    LATEST = "latest"


@dataclass
class ChatReply:
    conversation_id: str
    intent: Intent
    confidence: float
    answer: str
    facts: dict[str, Any]
    cited_anomaly_ids: list[str]
    anomalies: list[Anomaly]
    data: dict[str, Any] = field(default_factory=dict)
    rephrased: bool = False


def local_now() -> datetime:
    """Naive plant local time, the convention every stored timestamp follows."""
    return datetime.now()


class ChatbotService:
    """Long-lived (the classifier may hold a model); the repository is passed per question."""

    def __init__(
        self,
        classifier: IntentClassifier,
        feature_names: Mapping[Module, Sequence[str]] | None = None,
        *,
        clock: Callable[[], datetime] = local_now,
        anchor: TimeAnchor = TimeAnchor.CLOCK,
        memory: ConversationMemory | None = None,
        rephraser: AnswerRephraser | None = None,
        scan_cap: int = 5000,
        shown: int = 10,
    ) -> None:
        self.classifier = classifier
        self.parser = SlotParser(dict(feature_names or {}))
        self.clock = clock
        self.anchor = anchor
        self.memory = memory if memory is not None else ConversationMemory()
        self.rephraser = rephraser
        self.scan_cap = scan_cap
        self.shown = shown

    @property
    def feature_names(self) -> dict[Module, list[str]]:
        return {Module(m): list(names) for m, names in self.parser.feature_names.items()}

    def use_feature_names(self, feature_names: Mapping[Module, Sequence[str]]) -> None:
        """Sensor vocabulary of newly loaded models."""
        self.parser = SlotParser(dict(feature_names))

    def answer(
        self, repository: AnomalyRepository, question: str, conversation_id: str | None = None
    ) -> ChatReply:
        text = question.strip()
        if not text:
            raise InvalidInputError("question is empty", field="question")
        if len(text) > MAX_QUESTION_CHARS:
            raise InvalidInputError(
                f"question has {len(text)} characters, at most {MAX_QUESTION_CHARS} allowed", field="question"
            )
        now = self._now(repository)
        intent, confidence = self.classifier.classify(text)
        slots = self.parser.parse(text, now)
        conversation_id = conversation_id or uuid.uuid4().hex
        previous = self.memory.recall(conversation_id)
        if previous is not None:
            intent, slots = self._follow_up(text, intent, confidence, slots, previous)
        context = Context(
            repository=repository,
            slots=slots,
            now=now,
            known_features=self.parser.feature_modules,
            scan_cap=self.scan_cap,
            shown=self.shown,
        )
        draft = HANDLERS[intent](context)
        answer, rephrased = self._rephrase(text, draft)
        self.memory.remember(conversation_id, Turn(intent, slots, tuple(a.id for a in draft.shown)))
        return ChatReply(
            conversation_id=conversation_id,
            intent=intent,
            confidence=round(confidence, 3),
            answer=answer,
            facts=draft.facts,
            cited_anomaly_ids=draft.cited,
            anomalies=draft.shown,
            data=draft.data,
            rephrased=rephrased,
        )

    def _now(self, repository: AnomalyRepository) -> datetime:
        now = self.clock()
        if now.tzinfo is not None:
            now = now.astimezone().replace(tzinfo=None)
        if self.anchor is TimeAnchor.LATEST:
            newest = queries.latest(repository)
            if newest is not None:
                # One second past the newest reading, so ranges ending "now" include it.
                return newest.window_end + timedelta(seconds=1)
        return now

    def _follow_up(
        self, text: str, intent: Intent, confidence: float, slots: Slots, previous: Turn
    ) -> tuple[Intent, Slots]:
        continues = _FOLLOW_UP.search(text) is not None
        refers_back = _REFERS_BACK.search(text) is not None or slots.ordinal is not None
        if intent is Intent.EXPLAIN_ANOMALY and slots.at_time is None and slots.anomaly_id is None:
            # "why?", "explain the second one": the anomaly is one the previous answer showed.
            if previous.listed_ids and (refers_back or continues or slots.is_empty()):
                position = min(slots.ordinal or 0, len(previous.listed_ids) - 1)
                return intent, replace(slots, anomaly_id=previous.listed_ids[position])
            return intent, slots
        if intent is Intent.HELP:
            return intent, slots
        if intent is Intent.UNKNOWN and not slots.is_empty():
            return previous.intent, slots.over(previous.slots)
        if continues or (refers_back and intent is not Intent.UNKNOWN):
            own_intent = intent if confidence >= _OWN_INTENT_CONFIDENCE else previous.intent
            if own_intent is Intent.UNKNOWN:
                own_intent = previous.intent
            return own_intent, slots.over(previous.slots)
        return intent, slots

    def _rephrase(self, question: str, draft: Draft) -> tuple[str, bool]:
        if self.rephraser is None:
            return draft.text, False
        candidate = self.rephraser.rephrase(question, draft.text, draft.facts)
        if not candidate or ungrounded_numbers(candidate, draft.text, draft.facts):
            return draft.text, False
        return candidate.strip(), True
