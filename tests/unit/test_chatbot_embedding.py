"""The bundled sentence-embedding model as intent classifier, alone and beside the keyword rules.

Loads the real model once for the module (a few seconds on CPU).
"""

import statistics

import pytest
import torch

from plantwatch.adapters.chatbot.embedding import EmbeddingIntentClassifier, shared_embedding_classifier
from plantwatch.services.chatbot import (
    ChatbotService,
    CombinedIntentClassifier,
    Intent,
    RuleBasedIntentClassifier,
)
from tests.chatbot.evaluation import load_conversations, run_evaluation
from tests.chatbot.fixture_store import FEATURE_NAMES, NOW, build_store


@pytest.fixture(scope="module")
def model_classifier() -> EmbeddingIntentClassifier:
    torch.set_num_threads(1)
    return shared_embedding_classifier()


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("did the plant misbehave recently", Intent.LIST_ANOMALIES),
        ("which tag keeps causing trouble", Intent.TOP_ROOT_CAUSE),
        ("what is the capital of Spain", Intent.UNKNOWN),
        ("please write me a limerick", Intent.UNKNOWN),
    ],
)
def test_model_matches_paraphrases_and_rejects_off_topic(
    model_classifier: EmbeddingIntentClassifier, question: str, intent: Intent
) -> None:
    assert model_classifier.classify(question)[0] is intent


def test_evaluation_set_with_rules_and_model(model_classifier: EmbeddingIntentClassifier) -> None:
    repository, fixture = build_store()
    classifier = CombinedIntentClassifier(RuleBasedIntentClassifier(), model_classifier)
    chatbot = ChatbotService(classifier, FEATURE_NAMES, clock=lambda: NOW)
    outcomes = list(run_evaluation(chatbot, repository, fixture, load_conversations(with_model=True)))
    failures = [(o.question, o.problems) for o in outcomes if not o.correct]
    assert len(outcomes) >= 60
    assert len(failures) <= 0.05 * len(outcomes), failures
    # the keyword rules alone miss the cases marked needs_model
    rules_only = ChatbotService(RuleBasedIntentClassifier(), FEATURE_NAMES, clock=lambda: NOW)
    rule_outcomes = list(run_evaluation(rules_only, repository, fixture, load_conversations(with_model=True)))
    assert sum(not o.correct for o in rule_outcomes) > len(failures)
    # one encode per question, exemplars encoded once: far below the 300 ms budget even on a shared CPU
    assert statistics.median(o.seconds for o in outcomes) < 0.3
