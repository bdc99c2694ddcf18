"""Chatbot accuracy and latency: the hand-written evaluation set (tests/chatbot/questions.yaml) and the
questions generated from a grammar (tests/chatbot/generator.py), tuning and held-back splits reported apart.

    .venv/bin/python benchmarks/chatbot_benchmark.py                 # rules + embedding, in-memory store
    .venv/bin/python benchmarks/chatbot_benchmark.py --store sqlite  # the same through the SQL store (SQLite)
    .venv/bin/python benchmarks/chatbot_benchmark.py --rules-only

Prints start-up time, accuracy per set and p50/p95 latency per question after a warm-up; exits 1 when a
target is missed (hand-written set >= 95 %, held-back split >= 98 %, p95 < 100 ms, start-up < 5 s).
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run as a script from anywhere: the fixture stores and evaluation harness live in the tests package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chatbot.evaluation import load_conversations, run_evaluation
from tests.chatbot.fixture_store import FEATURE_NAMES, NOW, build_anomalies, build_store
from tests.chatbot.generator import HELD_BACK, TUNING, build_generated_anomalies, check_reply, generate
from tests.fakes import InMemoryAnomalyRepository

from plantwatch.domain.anomaly import Anomaly
from plantwatch.domain.ports import AnomalyRepository
from plantwatch.services.chatbot import (
    ChatbotService,
    CombinedIntentClassifier,
    IntentClassifier,
    RuleBasedIntentClassifier,
)

TARGET_HAND_WRITTEN = 0.95
TARGET_HELD_BACK = 0.98
TARGET_P95_SECONDS = 0.1
TARGET_STARTUP_SECONDS = 5.0


def make_store(kind: str, anomalies: list[Anomaly]) -> AnomalyRepository:
    if kind == "sqlite":
        from plantwatch.adapters.storage.engine import create_engine_from_url, create_schema
        from plantwatch.adapters.storage.sql_repository import SqlAnomalyRepository

        engine = create_engine_from_url("sqlite://")
        create_schema(engine)
        repository: AnomalyRepository = SqlAnomalyRepository(engine)
    else:
        repository = InMemoryAnomalyRepository()
    repository.add_many(anomalies)
    return repository


def timed(ask: Callable[[], bool]) -> tuple[bool, float]:
    started = time.perf_counter()
    correct = ask()
    return correct, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules-only", action="store_true", help="keyword rules without the embedding model")
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--repeat", type=int, default=2, help="passes over each set")
    parser.add_argument(
        "--large",
        type=int,
        default=0,
        metavar="N",
        help="also time 200 generated questions on a store of about N anomalies (latency only)",
    )
    args = parser.parse_args()

    imports = 0.0
    if not args.rules_only:
        # torch and sentence-transformers are imported by the API process anyway (the detectors use torch):
        # their import time is reported apart from the chatbot's own start-up.
        started = time.perf_counter()
        import sentence_transformers  # noqa: F401

        imports = time.perf_counter() - started
    started = time.perf_counter()
    classifier: IntentClassifier = RuleBasedIntentClassifier()
    if not args.rules_only:
        from plantwatch.adapters.chatbot.embedding import shared_embedding_classifier

        classifier = CombinedIntentClassifier(RuleBasedIntentClassifier(), shared_embedding_classifier())
    chatbot = ChatbotService(classifier, FEATURE_NAMES, clock=lambda: NOW)
    chatbot.warm_up()
    startup = time.perf_counter() - started
    print(f"imports of torch and sentence-transformers: {imports:.2f} s")
    print(f"start-up (model load, exemplar encoding, date parser): {startup:.2f} s")
    print(f"classifier: {'rules' if args.rules_only else 'rules + embedding'}, store: {args.store}")

    _, fixture = build_store()
    hand_store = make_store(args.store, list(build_anomalies().values()))
    conversations = load_conversations(with_model=not args.rules_only)
    generated_anomalies = build_generated_anomalies()
    generated_store = make_store(args.store, generated_anomalies)
    questions = generate(generated_anomalies)
    list(run_evaluation(chatbot, hand_store, fixture, conversations[:5]))  # warm-up

    latencies: list[float] = []
    results: dict[str, tuple[int, int]] = {}
    wrong: dict[str, list[str]] = {}
    for _ in range(args.repeat):
        outcomes = list(run_evaluation(chatbot, hand_store, fixture, conversations))
        latencies.extend(o.seconds for o in outcomes)
        results["hand-written"] = (sum(o.correct for o in outcomes), len(outcomes))
        wrong["hand-written"] = [
            f"{o.question!r}: {'; '.join(o.problems)}" for o in outcomes if not o.correct
        ]
        for split in (TUNING, HELD_BACK):
            right, total, misses = 0, 0, []
            for question in (q for q in questions if q.split == split):
                reply = None

                def ask(text: str = question.text) -> bool:
                    nonlocal reply
                    reply = chatbot.answer(generated_store, text)
                    return True

                _, seconds = timed(ask)
                assert reply is not None
                latencies.append(seconds)
                problems = check_reply(question, reply.intent.value, reply.facts, reply.cited_anomaly_ids)
                total += 1
                right += not problems
                if problems:
                    misses.append(f"{question.text!r}: {'; '.join(problems)}")
            results[f"generated {split}"] = (right, total)
            wrong[f"generated {split}"] = misses

    for name, (right, total) in results.items():
        print(f"{name}: {right}/{total} = {right / total:.1%}")
    latencies.sort()
    p95 = statistics.quantiles(latencies, n=100)[94]
    print(
        f"latency over {len(latencies)} answers: p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms (target p95 < "
        f"{TARGET_P95_SECONDS * 1000:.0f} ms)"
    )
    for name, misses in wrong.items():
        for miss in misses[:10]:
            print(f"  wrong ({name}): {miss}")
    if args.large:
        large_anomalies = build_generated_anomalies(seed=15, per_module=max(50, args.large // 3))
        started = time.perf_counter()
        large_store = make_store(args.store, large_anomalies)
        written = time.perf_counter() - started
        print(f"large store: {len(large_anomalies)} anomalies written in {written:.1f} s")
        large_latencies = []
        for question in generate(large_anomalies, count=200, seed=99):
            started = time.perf_counter()
            chatbot.answer(large_store, question.text)
            large_latencies.append(time.perf_counter() - started)
        large_latencies.sort()
        print(
            f"large store latency over {len(large_latencies)} answers: p50 "
            f"{statistics.median(large_latencies) * 1000:.1f} ms, p95 "
            f"{statistics.quantiles(large_latencies, n=100)[94] * 1000:.1f} ms"
        )
    hand_right, hand_total = results["hand-written"]
    held_right, held_total = results[f"generated {HELD_BACK}"]
    return (
        0
        if hand_right / hand_total >= TARGET_HAND_WRITTEN
        and held_right / held_total >= TARGET_HELD_BACK
        and p95 < TARGET_P95_SECONDS
        and startup < TARGET_STARTUP_SECONDS
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
