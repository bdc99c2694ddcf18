"""What a question asks for: the intents the chatbot answers and the rule-based classifier.

The rules are high-precision keyword patterns. They run on their own (fully offline, no model) and, beside the
sentence-embedding classifier, they settle the questions whose wording is unambiguous.
"""

import re
from enum import StrEnum
from typing import Protocol


class Intent(StrEnum):
    """The operation a question asks for; a typed query (query.py) pairs it with what to run it on."""

    LIST_ANOMALIES = "list_anomalies"
    """Count and list (the answer always gives the count)."""
    EXPLAIN_ANOMALY = "explain_anomaly"
    TOP_ROOT_CAUSE = "top_root_cause"
    SUMMARY = "summary"
    COMPARE_PERIODS = "compare_periods"
    SENSOR_INVOLVEMENT = "sensor_involvement"
    LATEST_ANOMALY = "latest_anomaly"
    """The newest anomaly, or the newest N ("the last 3")."""
    FIRST_ANOMALY = "first_anomaly"
    """The oldest anomaly, or the oldest N."""
    HIGHEST_SCORE = "highest_score"
    LOWEST_SCORE = "lowest_score"
    SHARE = "share"
    """What share of the anomalies in scope are of a severity, involve a sensor, or are in a module."""
    COMPARE_MODULES = "compare_modules"
    TREND = "trend"
    """Whether the count per hour/day is rising, falling or flat over a period."""
    OPEN_INCIDENTS = "open_incidents"
    """The incidents not closed yet, with state, severity, start and top cause."""
    COUNT_INCIDENTS = "count_incidents"
    """How many incidents (alarms, not scored windows) in scope."""
    INCIDENT_ACKNOWLEDGER = "incident_acknowledger"
    """Who acknowledged the newest incident in scope, and when, from its audit log."""
    HELP = "help"
    UNKNOWN = "unknown"


class IntentClassifier(Protocol):
    def classify(self, text: str) -> tuple[Intent, float]:
        """The intent of `text` and a confidence in [0, 1]; Intent.UNKNOWN when nothing fits."""
        ...


# Exemplar questions per intent: the embedding classifier's reference set and the help text's examples.
INTENT_EXAMPLES: dict[Intent, tuple[str, ...]] = {
    Intent.LIST_ANOMALIES: (
        "what went wrong in energy in the last 24 h",
        "show me the anomalies in the machine module today",
        "list the cyber alerts from yesterday",
        "how many anomalies were there this week",
        "were there any problems in energy",
        "what happened on the plant last night",
        "any critical incidents today",
        "which anomalies occurred since Monday",
        "give me the issues detected in the last hour",
        "did anything unusual happen in the machine data",
        "count the anomalies in cyber",
        "what issues did we have yesterday",
    ),
    Intent.EXPLAIN_ANOMALY: (
        "why was the cyber anomaly at 10:32 flagged",
        "explain the anomaly at 08:00",
        "what caused the energy anomaly this morning",
        "why is this anomaly critical",
        "tell me more about that anomaly",
        "what is the reason for the alert at 14:15",
        "explain the first one",
        "details of the machine anomaly at 11:00",
        "why did the detector flag it",
        "which features drove the anomaly at 09:05",
    ),
    Intent.TOP_ROOT_CAUSE: (
        "which sensor is most often the root cause this week",
        "what is the most common root cause",
        "top root causes in the machine module",
        "which feature causes the most anomalies",
        "rank the sensors by how often they are the culprit",
        "which signal is usually responsible for anomalies",
        "most frequent culprit in cyber",
        "what sensor shows up most in root causes",
        "which tags are to blame most of the time",
    ),
    Intent.SUMMARY: (
        "summary across all modules",
        "give me an overview of the plant",
        "summarise the anomalies",
        "how is the plant doing",
        "status report for all modules",
        "overall picture of anomalies",
        "brief me on the current state",
        "what is the overall situation",
        "give me a report",
    ),
    Intent.COMPARE_PERIODS: (
        "compare today with yesterday",
        "this week versus last week",
        "are there more anomalies today than yesterday",
        "how does today compare to yesterday",
        "difference between this week and last week",
        "is it getting better or worse",
        "did anomalies increase compared to yesterday",
        "trend of anomalies compared with the previous day",
    ),
    Intent.SENSOR_INVOLVEMENT: (
        "is P101 involved in any anomaly",
        "was LIT101 part of any anomaly",
        "has usage_kwh been implicated",
        "any anomalies involving vibration_mm_s",
        "did FIT101 contribute to anomalies this week",
        "show anomalies where temperature_c was a root cause",
        "is the pump sensor involved",
        "was this sensor a cause of any alert",
    ),
    Intent.LATEST_ANOMALY: (
        "when was the last anomaly",
        "what is the most recent anomaly",
        "show the latest alert in energy",
        "newest anomaly in cyber",
        "when did the machine last misbehave",
        "what was the last incident",
    ),
    Intent.FIRST_ANOMALY: (
        "when was the first anomaly",
        "show the earliest cyber alert",
        "what was the oldest anomaly in machine",
        "when did the anomalies start",
    ),
    Intent.HIGHEST_SCORE: (
        "what was the highest anomaly score",
        "which anomaly had the maximum score in cyber",
        "show the top scoring anomalies",
        "what is the peak score in energy",
    ),
    Intent.LOWEST_SCORE: (
        "what was the lowest anomaly score",
        "which anomaly had the minimum score",
    ),
    Intent.SHARE: (
        "what share of machine anomalies are critical",
        "what percentage of the anomalies are high severity",
        "what proportion of alerts involve P101",
        "what fraction of anomalies are in cyber",
    ),
    Intent.COMPARE_MODULES: (
        "compare energy and cyber",
        "which module has the most anomalies",
        "are there more anomalies in machine than in energy",
    ),
    Intent.TREND: (
        "is the number of anomalies going up",
        "what is the trend in cyber this week",
        "are machine anomalies rising",
        "is energy trending down",
    ),
    Intent.OPEN_INCIDENTS: (
        "what is open",
        "which incidents are open in cyber",
        "list the unresolved incidents",
        "which alarms are still open",
    ),
    Intent.COUNT_INCIDENTS: (
        "how many incidents in machine last week",
        "count the incidents in cyber",
        "number of incidents this week",
    ),
    Intent.INCIDENT_ACKNOWLEDGER: (
        "who acknowledged the last cyber incident",
        "who acked the latest incident in machine",
        "has anyone acknowledged the last incident",
    ),
    Intent.HELP: (
        "help",
        "what can you do",
        "what can I ask you",
        "hello",
        "hi there",
        "how do I use this chatbot",
        "which questions do you understand",
    ),
    Intent.UNKNOWN: (
        "what is the weather in Paris",
        "tell me a joke",
        "who won the football match",
        "write a poem about spring",
        "book a flight to London",
        "what is the capital of France",
        "how do I cook pasta",
        "translate this into German",
        "what is the meaning of life",
        "order a pizza",
        "what time is it in Tokyo",
        "play some music",
    ),
}

_ANOMALY = r"(anomal\w*|alerts?|alarms?|incidents?|events?|problems?|issues?|faults?|attacks?)"
_SENSOR = r"(sensors?|features?|signals?|tags?|variables?|channels?|measurements?|inputs?)"

# (intent, weight, pattern). A question's intent is the one with the highest-weight match; order breaks ties.
_N = r"(\d{1,3}|two|three|four|five|six|seven|eight|nine|ten)"
_INCIDENT = r"(incidents?|alarms?)"
_RULES: tuple[tuple[Intent, float, str], ...] = (
    # Incidents first: these name the incident store's own notions (open, acknowledged, incidents counted).
    (
        Intent.INCIDENT_ACKNOWLEDGER,
        0.99,
        r"\b(who|anyone|anybody|somebody|someone)\b.*\b(acknowledg\w*|ack(ed)?)\b",
    ),
    (Intent.OPEN_INCIDENTS, 0.99, r"^\s*(what|which)('s|\s+is|\s+are)?\s+(still\s+)?(open|unresolved)\b"),
    (Intent.OPEN_INCIDENTS, 0.99, rf"\b(open|unresolved|unclosed|not closed)\s+(\w+\s+)?{_INCIDENT}"),
    (Intent.OPEN_INCIDENTS, 0.99, rf"\b{_INCIDENT}\b.*\b(are|is)\s+(still\s+)?(open|unresolved)\b"),
    (Intent.COUNT_INCIDENTS, 0.99, r"\b(how many|count|number of)\b.*\bincidents\b"),
    (Intent.HIGHEST_SCORE, 0.97, r"\b(highest|maximum|max|largest|biggest|peak|top)\b.*\bscor\w*"),
    (Intent.HIGHEST_SCORE, 0.97, r"\bscor\w*\b.*\b(highest|maximum|max|largest|biggest|peak)\b"),
    (Intent.LOWEST_SCORE, 0.97, r"\b(lowest|minimum|min|smallest)\b.*\bscor\w*"),
    (Intent.LOWEST_SCORE, 0.97, r"\bscor\w*\b.*\b(lowest|minimum|smallest)\b"),
    (Intent.SHARE, 0.97, r"\b(share|percentage|proportion|fraction|percent)\b|%\s*of\b"),
    (Intent.TREND, 0.9, r"\b(trend\w*|going (up|down)|rising|falling|on the rise|climbing|declining)\b"),
    (Intent.FIRST_ANOMALY, 0.92, rf"\b(first|earliest|oldest)\s+({_N}\s+)?(\w+\s+){{0,4}}{_ANOMALY}"),
    (Intent.FIRST_ANOMALY, 0.92, r"\bwhen (was|did)\b.*\b(first|earliest|start\w*|begin\w*)\b"),
    (Intent.FIRST_ANOMALY, 0.92, rf"\b{_N}\s+(first|earliest|oldest)\b"),
    (Intent.LATEST_ANOMALY, 0.92, rf"\b(last|latest|most recent|newest)\s+{_N}\s+(\w+\s+){{0,4}}{_ANOMALY}"),
    (Intent.LATEST_ANOMALY, 0.92, rf"\b{_N}\s+(most recent|latest|newest|last)\b"),
    (Intent.COMPARE_MODULES, 0.9, r"\bwhich module\b"),
    (Intent.COMPARE_PERIODS, 0.95, r"\bcompar\w*\b"),
    (Intent.COMPARE_PERIODS, 0.95, r"\b(vs\.?|versus)\b"),
    (Intent.COMPARE_PERIODS, 0.9, r"\bdifference between\b"),
    (Intent.COMPARE_PERIODS, 0.9, r"\b(more|fewer|less)\b.*\bthan\b"),
    (Intent.COMPARE_PERIODS, 0.85, r"\b(better|worse)\b"),
    (Intent.COMPARE_PERIODS, 0.85, r"\b(increase|decrease|trend)\w*\b"),
    (
        Intent.TOP_ROOT_CAUSE,
        0.95,
        rf"\b(which|what)\b.*\b{_SENSOR}\b.*\b(most|often|frequent\w*|usual\w*|common\w*)\b",
    ),
    (
        Intent.TOP_ROOT_CAUSE,
        0.95,
        r"\b(most|often|frequent\w*|common\w*)\b.*\b(root[- ]?causes?|culprits?|causes?)\b",
    ),
    (Intent.TOP_ROOT_CAUSE, 0.95, r"\btop\b.*\b(root[- ]?causes?|causes?|culprits?|sensors?|features?)\b"),
    (Intent.TOP_ROOT_CAUSE, 0.9, r"\brank\w*\b.*\b(sensors?|features?|causes?)\b"),
    (Intent.TOP_ROOT_CAUSE, 0.9, r"\b(to blame|culprits?|usual suspects?)\b"),
    (Intent.SENSOR_INVOLVEMENT, 0.95, r"\binvolv\w*\b"),
    (
        Intent.SENSOR_INVOLVEMENT,
        0.9,
        r"\b(implicated|contribut\w*|part of|a factor|show(n|ed)? up|appear\w*)\b",
    ),
    (Intent.EXPLAIN_ANOMALY, 0.95, r"\bwhy\b"),
    (Intent.EXPLAIN_ANOMALY, 0.95, r"\bexplain\w*\b"),
    (Intent.EXPLAIN_ANOMALY, 0.9, r"\bwhat (caused|triggered|drove|made)\b"),
    (Intent.EXPLAIN_ANOMALY, 0.85, r"\b(at|around)\s+\d{1,2}:\d{2}\b"),
    (Intent.EXPLAIN_ANOMALY, 0.9, r"\b(reason|flagged)\b"),
    (Intent.EXPLAIN_ANOMALY, 0.9, r"\b(tell me more|more about|details?)\b"),
    (Intent.EXPLAIN_ANOMALY, 0.9, r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
    (
        Intent.LATEST_ANOMALY,
        0.9,
        rf"\b(last|latest|most recent|newest)\s+(\w+\s+)?{_ANOMALY}\b(?!.*\b(hours?|days?|weeks?|h)\b)",
    ),
    (Intent.LATEST_ANOMALY, 0.9, r"\bwhen (was|did)\b.*\b(last|latest|most recent)\b"),
    (Intent.LATEST_ANOMALY, 0.85, r"\b(most recent|latest|newest)\b"),
    (Intent.SUMMARY, 0.9, r"\b(summ?ar\w*|recap|rundown|digest)\b"),
    (Intent.SUMMARY, 0.9, r"\b(overview|overall|status|report|brief)\b"),
    (Intent.SUMMARY, 0.9, r"\b(all|every|each) modules?\b"),
    (Intent.SUMMARY, 0.85, r"\bhow is the plant\b"),
    (Intent.LIST_ANOMALIES, 0.9, r"\b(go|goes|went|going|gone) wrong\b"),
    (Intent.LIST_ANOMALIES, 0.9, rf"\b(show|list|give|display|get)\b.*\b{_ANOMALY}"),
    (Intent.LIST_ANOMALIES, 0.9, r"\bhow many\b"),
    (Intent.LIST_ANOMALIES, 0.9, r"\bcount\b"),
    (Intent.LIST_ANOMALIES, 0.85, r"\bwhat happened\b"),
    (Intent.LIST_ANOMALIES, 0.85, rf"\b(any|were there|was there)\b.*\b{_ANOMALY}"),
    (Intent.LIST_ANOMALIES, 0.8, rf"\b{_ANOMALY}"),
    (Intent.HELP, 0.95, r"\bhelp\b"),
    (Intent.HELP, 0.9, r"\bwhat (can|do) (you|i)\b.*\b(do|ask|answer|know)\b"),
    (Intent.HELP, 0.9, r"\bwhich questions\b"),
    (Intent.HELP, 0.85, r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b"),
)
_COMPILED = tuple((intent, weight, re.compile(pattern)) for intent, weight, pattern in _RULES)


class RuleBasedIntentClassifier:
    """Keyword patterns; no model, no network. Confidence is the weight of the best-matching pattern."""

    def classify(self, text: str) -> tuple[Intent, float]:
        lowered = text.lower()
        best: tuple[Intent, float] = (Intent.UNKNOWN, 0.0)
        for intent, weight, pattern in _COMPILED:
            if weight > best[1] and pattern.search(lowered):
                best = (intent, weight)
        return best


class CombinedIntentClassifier:
    """A rule match wins; otherwise the model's answer when it is similar enough; otherwise unknown.

    On the evaluation set the rules are right wherever they fire, while the model, a general-purpose sentence
    encoder, is swayed by time and module words ("in the last hour" pulls towards "latest anomaly"). So the
    model covers what the rules miss: keyword-free paraphrases ("did the plant misbehave recently") and
    telling in-scope from out-of-scope questions.
    """

    def __init__(
        self,
        rules: IntentClassifier,
        model: IntentClassifier,
        rule_confidence: float = 0.8,
        model_confidence: float = 0.45,
    ) -> None:
        self.rules = rules
        self.model = model
        self.rule_confidence = rule_confidence
        self.model_confidence = model_confidence

    def classify(self, text: str) -> tuple[Intent, float]:
        rule_intent, rule_score = self.rules.classify(text)
        if rule_score >= self.rule_confidence:
            return rule_intent, rule_score
        model_intent, model_score = self.model.classify(text)
        if model_score >= self.model_confidence:
            return model_intent, model_score
        if rule_score > 0:
            return rule_intent, rule_score
        return Intent.UNKNOWN, model_score
