"""The chatbot use case: question in, grounded answer out.

Repair typos, understand (operation + slots), follow up on the conversation's previous turn, build the typed
query (with the time anchor of the asked modules), run it on the store, write the answer from the results,
optionally let a rephraser reword it (kept only when it adds no number of its own).
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
from plantwatch.domain.ports import AnomalyRepository, IncidentRepository
from plantwatch.services.chatbot import queries
from plantwatch.services.chatbot.answers import HANDLERS, Answer, Store, help_reply
from plantwatch.services.chatbot.dates import parse_moment
from plantwatch.services.chatbot.grounding import AnswerRephraser, ungrounded_numbers
from plantwatch.services.chatbot.incident_answers import INCIDENT_HANDLERS
from plantwatch.services.chatbot.intents import Intent, IntentClassifier
from plantwatch.services.chatbot.memory import ConversationMemory, Turn
from plantwatch.services.chatbot.query import Query
from plantwatch.services.chatbot.slots import SlotParser, Slots
from plantwatch.services.chatbot.spelling import SpellingRepair

MAX_QUESTION_CHARS = 500

# A turn that opens like this continues the previous one ("and yesterday?", "what about machine?").
_FOLLOW_UP = re.compile(r"^\s*(and|what about|how about|same for|also|then|now)\b", re.IGNORECASE)
_REFERS_BACK = re.compile(r"\b(it|that|this|those|them|that one|this one)\b", re.IGNORECASE)
# "the second one", "number 2", "the third": a pick from the previous answer's list and nothing else.
_ONLY_A_PICK = re.compile(
    r"^\s*(and\s+)?(what about\s+|how about\s+)?(the\s+)?"
    r"(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th|last)(\s+one)?\s*[?.!]*\s*$",
    re.IGNORECASE,
)
# Below this, an intent guess on a follow-up is weaker than the conversation's own intent.
_OWN_INTENT_CONFIDENCE = 0.85
# Operations that compare: two modules named turn "compare" into comparing modules.
_COMPARES = (Intent.COMPARE_PERIODS, Intent.COMPARE_MODULES)


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
    cited_incident_ids: list[str] = field(default_factory=list)
    rephrased: bool = False
    interpretation: str = ""
    """How the question was read ("count and list; cyber; between ... and ...; high or critical severity")."""
    query: dict[str, Any] = field(default_factory=dict)
    """The typed query as plain values."""


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
        cite_cap: int = 500,
        shown: int = 10,
    ) -> None:
        self.classifier = classifier
        self.clock = clock
        self.anchor = anchor
        self.memory = memory if memory is not None else ConversationMemory()
        self.rephraser = rephraser
        self.cite_cap = cite_cap
        self.shown = shown
        self.use_feature_names(feature_names or {})

    @property
    def feature_names(self) -> dict[Module, list[str]]:
        return {Module(m): list(names) for m, names in self.parser.feature_names.items()}

    def use_feature_names(self, feature_names: Mapping[Module, Sequence[str]]) -> None:
        """Sensor vocabulary of newly loaded models."""
        self.parser = SlotParser(dict(feature_names))
        self.spelling = SpellingRepair(self.parser.feature_modules)

    def warm_up(self) -> None:
        """Load what the first question would otherwise pay for (dateparser's English data: ~0.2 s)."""
        parse_moment("10:17 on 2015-12-28", self._clock_now())
        self.spelling.repair("warm up yesterdy")

    def answer(
        self,
        repository: AnomalyRepository,
        question: str,
        conversation_id: str | None = None,
        incidents: IncidentRepository | None = None,
    ) -> ChatReply:
        """`incidents`: the incident store questions about incidents read; None where none is wired."""
        text = question.strip()
        if not text:
            raise InvalidInputError("question is empty", field="question")
        if len(text) > MAX_QUESTION_CHARS:
            raise InvalidInputError(
                f"question has {len(text)} characters, at most {MAX_QUESTION_CHARS} allowed", field="question"
            )
        text = self.spelling.repair(text)
        conversation_id = conversation_id or uuid.uuid4().hex
        previous = self.memory.recall(conversation_id)
        intent, confidence = self.classifier.classify(text)
        clock_now = self._clock_now()
        slots = self.parser.parse(text, clock_now)
        if previous is not None:
            intent, slots = self._follow_up(text, intent, confidence, slots, previous)
        now, anchored = self._anchor(repository, slots.modules, clock_now)
        if now != clock_now:
            # Relative periods count back from the asked modules' newest anomaly: parse them again from there.
            own = self.parser.parse(text, now)
            slots = replace(slots, time_ranges=own.time_ranges, at_date=own.at_date)
            if previous is not None and not own.time_ranges:
                slots = replace(slots, time_ranges=previous.slots.time_ranges)
        query = Query(self._operation(intent, slots), slots, now, anchored)
        store = Store(repository, self.parser.feature_modules, self.cite_cap, self.shown, incidents)
        answer = self._run(query, store, confidence)
        text_out, rephrased = self._rephrase(question, answer)
        if query.operation not in (Intent.HELP, Intent.UNKNOWN):
            text_out += f" (Read as: {query.describe()}.)"
        topic = query.operation
        if topic is Intent.EXPLAIN_ANOMALY and previous is not None:
            topic = previous.topic or previous.intent
        self.memory.remember(
            conversation_id, Turn(query.operation, slots, tuple(a.id for a in answer.shown), topic)
        )
        return ChatReply(
            conversation_id=conversation_id,
            intent=query.operation,
            confidence=round(confidence, 3),
            answer=text_out,
            facts={**answer.facts.as_dict(), "query": query.as_facts()},
            cited_anomaly_ids=answer.cited,
            anomalies=answer.shown,
            data=answer.data,
            cited_incident_ids=answer.cited_incidents,
            rephrased=rephrased,
            interpretation=query.describe(),
            query=query.as_facts(),
        )

    def _run(self, query: Query, store: Store, confidence: float) -> Answer:
        if query.slots.future:
            return help_reply(replace(query, operation=Intent.UNKNOWN), store, "future")
        if query.slots.unread_time is not None:
            return help_reply(query, store, "unsure", unread=query.slots.unread_time)
        if query.operation is Intent.UNKNOWN and confidence > 0:
            return help_reply(query, store, "unsure" if _names_plant_things(query.slots) else "out_of_scope")
        handler = INCIDENT_HANDLERS.get(query.operation) or HANDLERS[query.operation]
        return handler(query, store)

    @staticmethod
    def _operation(intent: Intent, slots: Slots) -> Intent:
        """The operation the query runs: the intent, refined by what the question names."""
        if slots.future or slots.unread_time is not None:
            return Intent.UNKNOWN
        if intent in _COMPARES and len(slots.modules) >= 2 and len(slots.time_ranges) < 2:
            return Intent.COMPARE_MODULES
        if intent is Intent.COMPARE_MODULES and len(slots.time_ranges) >= 2:
            return Intent.COMPARE_PERIODS
        return intent

    def _clock_now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is not None:
            now = now.astimezone().replace(tzinfo=None)
        return now

    def _anchor(
        self, repository: AnomalyRepository, modules: Sequence[Module], clock_now: datetime
    ) -> tuple[datetime, bool]:
        """What relative periods count back from, and whether that is the newest stored anomaly."""
        if self.anchor is TimeAnchor.LATEST:
            # Per module: replayed data sets of different years each count back from their own newest anomaly.
            newest = queries.latest(repository, frozenset(modules) if modules else None)
            if newest is not None:
                # One second past the newest reading (whole seconds), so ranges ending "now" include it.
                return newest.window_end.replace(microsecond=0) + timedelta(seconds=1), True
        return clock_now, False

    def _follow_up(
        self, text: str, intent: Intent, confidence: float, slots: Slots, previous: Turn
    ) -> tuple[Intent, Slots]:
        continues = _FOLLOW_UP.search(text) is not None
        refers_back = _REFERS_BACK.search(text) is not None or slots.ordinal is not None
        picks = _ONLY_A_PICK.match(text)
        if picks is not None and previous.listed_ids:
            # "the second one": explain that anomaly of the previous answer's list
            position = (
                len(previous.listed_ids) - 1 if picks.group(4).lower() == "last" else slots.ordinal or 0
            )
            chosen = previous.listed_ids[min(position, len(previous.listed_ids) - 1)]
            return Intent.EXPLAIN_ANOMALY, replace(slots.over(previous.slots), anomaly_id=chosen)
        if intent is Intent.EXPLAIN_ANOMALY and slots.at_time is None and slots.anomaly_id is None:
            # "why?", "explain the second one": the anomaly is one the previous answer showed.
            if previous.listed_ids and (refers_back or continues or slots.is_empty()):
                position = min(slots.ordinal or 0, len(previous.listed_ids) - 1)
                # the conversation's scope stays for the follow-ups after this one
                return intent, replace(slots.over(previous.slots), anomaly_id=previous.listed_ids[position])
            return intent, slots
        if intent is Intent.HELP:
            return intent, slots
        if previous.intent is Intent.EXPLAIN_ANOMALY and previous.topic not in (None, Intent.EXPLAIN_ANOMALY):
            # "why?" then "what about last week?": back to what was asked before the explanation
            previous = replace(
                previous, intent=previous.topic, slots=replace(previous.slots, anomaly_id=None)
            )
        if intent is Intent.UNKNOWN and not slots.is_empty() and not slots.future:
            return previous.intent, slots.over(previous.slots)
        if continues or (refers_back and intent is not Intent.UNKNOWN):
            own_intent = intent if confidence >= _OWN_INTENT_CONFIDENCE else previous.intent
            if own_intent is Intent.UNKNOWN:
                own_intent = previous.intent
            return own_intent, slots.over(previous.slots)
        return intent, slots

    def _rephrase(self, question: str, answer: Answer) -> tuple[str, bool]:
        if self.rephraser is None:
            return answer.text, False
        facts = answer.facts.as_dict()
        candidate = self.rephraser.rephrase(question, answer.text, facts)
        if not candidate or ungrounded_numbers(candidate, answer.text, facts):
            return answer.text, False
        return candidate.strip(), True


def _names_plant_things(slots: Slots) -> bool:
    """Whether a question names a module, sensor, severity, period, time or anomaly."""
    return bool(
        slots.modules
        or slots.features
        or slots.severities
        or slots.time_ranges
        or slots.at_time
        or slots.anomaly_id
    )
