"""Conversation memory: what the previous turn of a conversation asked and showed, for follow-up questions."""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from plantwatch.services.chatbot.intents import Intent
from plantwatch.services.chatbot.slots import Slots


@dataclass(frozen=True)
class Turn:
    intent: Intent
    slots: Slots
    listed_ids: tuple[str, ...]
    """The anomalies the answer showed, in the order shown: what "the first one" or "it" refers to."""
    topic: Intent | None = None
    """The last operation that was not explaining one anomaly: what "what about last week?" goes back to."""


class ConversationMemory:
    """The last turn per conversation id, bounded in count (least recently used goes) and in age."""

    def __init__(
        self,
        max_conversations: int = 1000,
        ttl_seconds: float = 2 * 3600,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_conversations = max_conversations
        self.ttl_seconds = ttl_seconds
        self._monotonic = monotonic
        self._turns: OrderedDict[str, tuple[float, Turn]] = OrderedDict()
        # Requests are served from a thread pool; one lock keeps the LRU order and the dict consistent.
        self._lock = threading.Lock()

    def recall(self, conversation_id: str) -> Turn | None:
        with self._lock:
            entry = self._turns.get(conversation_id)
            if entry is None:
                return None
            stored_at, turn = entry
            if self._monotonic() - stored_at > self.ttl_seconds:
                del self._turns[conversation_id]
                return None
            self._turns.move_to_end(conversation_id)
            return turn

    def remember(self, conversation_id: str, turn: Turn) -> None:
        with self._lock:
            self._turns[conversation_id] = (self._monotonic(), turn)
            self._turns.move_to_end(conversation_id)
            while len(self._turns) > self.max_conversations:
                self._turns.popitem(last=False)

    def __len__(self) -> int:
        return len(self._turns)
