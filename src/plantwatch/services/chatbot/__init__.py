"""The chatbot: questions about stored anomalies, answered from typed queries on the anomaly store."""

from plantwatch.services.chatbot.grounding import AnswerRephraser, ungrounded_numbers
from plantwatch.services.chatbot.intents import (
    INTENT_EXAMPLES,
    CombinedIntentClassifier,
    Intent,
    IntentClassifier,
    RuleBasedIntentClassifier,
)
from plantwatch.services.chatbot.memory import ConversationMemory
from plantwatch.services.chatbot.query import Query
from plantwatch.services.chatbot.service import ChatbotService, ChatReply, TimeAnchor
from plantwatch.services.chatbot.slots import SlotParser, Slots, TimeRange

__all__ = [
    "INTENT_EXAMPLES",
    "AnswerRephraser",
    "ChatReply",
    "ChatbotService",
    "CombinedIntentClassifier",
    "ConversationMemory",
    "Intent",
    "IntentClassifier",
    "Query",
    "RuleBasedIntentClassifier",
    "SlotParser",
    "Slots",
    "TimeAnchor",
    "TimeRange",
    "ungrounded_numbers",
]
