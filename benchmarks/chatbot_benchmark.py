"""Chatbot accuracy and latency on the evaluation set (tests/chatbot/questions.yaml).

    .venv/bin/python benchmarks/chatbot_benchmark.py                 # rules + embedding, in-memory store
    .venv/bin/python benchmarks/chatbot_benchmark.py --store sqlite  # the same through the SQL store (SQLite)
    .venv/bin/python benchmarks/chatbot_benchmark.py --rules-only

Prints accuracy and p50/p95 latency per question after a warm-up; exits 1 when a target is missed
(accuracy >= 95 %, p95 < 300 ms).
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

# Run as a script from anywhere: the fixture store and evaluation harness live in the tests package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chatbot.evaluation import Outcome, load_conversations, run_evaluation
from tests.chatbot.fixture_store import FEATURE_NAMES, NOW, build_anomalies, build_store

from plantwatch.domain.ports import AnomalyRepository
from plantwatch.services.chatbot import (
    ChatbotService,
    CombinedIntentClassifier,
    IntentClassifier,
    RuleBasedIntentClassifier,
)

TARGET_ACCURACY = 0.95
TARGET_P95_SECONDS = 0.3


def sqlite_store() -> AnomalyRepository:
    from plantwatch.adapters.storage.engine import create_engine_from_url, create_schema
    from plantwatch.adapters.storage.sql_repository import SqlAnomalyRepository

    engine = create_engine_from_url("sqlite://")
    create_schema(engine)
    repository = SqlAnomalyRepository(engine)
    repository.add_many(list(build_anomalies().values()))
    return repository


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules-only", action="store_true", help="keyword rules without the embedding model")
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the evaluation set")
    args = parser.parse_args()

    started = time.perf_counter()
    classifier: IntentClassifier = RuleBasedIntentClassifier()
    if not args.rules_only:
        from plantwatch.adapters.chatbot.embedding import shared_embedding_classifier

        classifier = CombinedIntentClassifier(RuleBasedIntentClassifier(), shared_embedding_classifier())
    print(f"start-up (model load, exemplar encoding, warm-up encode): {time.perf_counter() - started:.1f} s")

    memory_store, fixture = build_store()
    repository = sqlite_store() if args.store == "sqlite" else memory_store
    chatbot = ChatbotService(classifier, FEATURE_NAMES, clock=lambda: NOW)
    conversations = load_conversations(with_model=not args.rules_only)
    list(run_evaluation(chatbot, repository, fixture, conversations[:5]))  # warm-up

    outcomes: list[Outcome] = []
    for _ in range(args.repeat):
        outcomes.extend(run_evaluation(chatbot, repository, fixture, conversations))
    questions = len(outcomes) // args.repeat
    accuracy = sum(o.correct for o in outcomes) / len(outcomes)
    latencies = sorted(o.seconds for o in outcomes)
    p95 = statistics.quantiles(latencies, n=100)[94]
    print(f"classifier: {'rules' if args.rules_only else 'rules + embedding'}, store: {args.store}")
    print(f"questions: {questions} x {args.repeat} passes")
    print(f"accuracy: {accuracy:.1%} (target >= {TARGET_ACCURACY:.0%})")
    print(
        f"latency p50: {statistics.median(latencies) * 1000:.1f} ms, p95: {p95 * 1000:.1f} ms, max: "
        f"{latencies[-1] * 1000:.1f} ms (target p95 < {TARGET_P95_SECONDS * 1000:.0f} ms)"
    )
    for outcome in outcomes[:questions]:
        if not outcome.correct:
            print(f"  wrong: {outcome.question!r}: {'; '.join(outcome.problems)}")
    return 0 if accuracy >= TARGET_ACCURACY and p95 < TARGET_P95_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
