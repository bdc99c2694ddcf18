"""Builds the chatbot service from Settings; the embedding model loads in the background, off requests."""

import logging
import threading
from collections.abc import Mapping, Sequence

from plantwatch.domain.modules import Module
from plantwatch.infrastructure.chatbot.embedding import shared_embedding_classifier
from plantwatch.infrastructure.chatbot.llm import OpenAICompatibleRephraser
from plantwatch.infrastructure.settings import Settings
from plantwatch.services.chatbot import (
    ChatbotService,
    CombinedIntentClassifier,
    RuleBasedIntentClassifier,
    TimeAnchor,
)

log = logging.getLogger(__name__)


def build_chatbot_service(
    settings: Settings, feature_names: Mapping[Module, Sequence[str]]
) -> ChatbotService:
    """A service answering with the keyword rules at once; with settings.chatbot_embeddings, a background
    thread adds the embedding classifier once it is loaded."""
    rephraser = None
    if settings.llm_url:
        rephraser = OpenAICompatibleRephraser(
            settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout_s
        )
    service = ChatbotService(
        RuleBasedIntentClassifier(),
        feature_names,
        anchor=TimeAnchor(settings.chatbot_time_anchor),
        rephraser=rephraser,
    )
    if settings.chatbot_embeddings:
        threading.Thread(
            target=enable_embeddings, args=(service,), name="chatbot-embeddings", daemon=True
        ).start()
    return service


def enable_embeddings(service: ChatbotService) -> bool:
    """Load the embedding classifier (once per process) and switch `service` to rules + embeddings."""
    try:
        model_classifier = shared_embedding_classifier()
    except Exception:  # a broken model install must not take the chatbot down: the rules still answer
        log.exception("could not load the chatbot's embedding model; answering with keyword rules only")
        return False
    service.classifier = CombinedIntentClassifier(RuleBasedIntentClassifier(), model_classifier)
    log.info("chatbot intent matching uses the embedding model")
    return True
