"""Answers per operation: run the typed query on the store and write the answer from typed results.

Counts and aggregates come from the store (AnomalyRepository.tally, top, histogram), never from a page of
rows; the anomalies cited are those the figures are about (the newest `cite_cap` of them when there are
more). Every figure an answer writes is in its facts, rounded as written.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from plantwatch.domain.anomaly import Anomaly, Severity
from plantwatch.domain.errors import NotFoundError
from plantwatch.domain.modules import Module, known_modules
from plantwatch.domain.ports import (
    AnomalyOrder,
    AnomalyQuery,
    AnomalyRepository,
    AnomalyTally,
    IncidentRepository,
)
from plantwatch.services.chatbot import queries
from plantwatch.services.chatbot.facts import (
    AnomalyLine,
    CauseFacts,
    ClarifyFacts,
    CompareModulesFacts,
    ComparePeriodsFacts,
    ExplainFacts,
    Facts,
    FeatureCount,
    HelpFacts,
    Involvement,
    InvolvementFacts,
    ListFacts,
    ModuleSummary,
    NotExplained,
    NothingFound,
    RankedCause,
    RankedFacts,
    ShareFacts,
    SummaryFacts,
    TopCauseFacts,
    TrendFacts,
    WhichSensor,
    ratio_written,
    score_ratio,
    score_written,
)
from plantwatch.services.chatbot.intents import INTENT_EXAMPLES, Intent
from plantwatch.services.chatbot.query import Query, severity_words
from plantwatch.services.chatbot.slots import TimeRange

# How far from a named time of day the nearest anomaly may be when none was flagged in that very minute.
NEAREST_TOLERANCE = timedelta(minutes=30)


@dataclass(frozen=True)
class Store:
    """What answers read: the anomaly store, the sensor vocabulary and how much they cite and show."""

    repository: AnomalyRepository
    known_features: dict[str, set[Module]]
    cite_cap: int = 500
    shown: int = 10
    incidents: IncidentRepository | None = None
    """None where no incident store is wired: questions about incidents are answered without figures."""


@dataclass
class Answer:
    text: str
    facts: Facts
    cited: list[str] = field(default_factory=list)
    cited_incidents: list[str] = field(default_factory=list)
    shown: list[Anomaly] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _noun(count: int) -> str:
    return "anomaly" if count == 1 else "anomalies"


def _ranked_causes(tally: AnomalyTally) -> list[tuple[str, int]]:
    """Main root causes, most frequent first, then by name."""
    return _ranked(tally.by_top_feature)


def _ranked(causes: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(causes.items(), key=lambda item: (-item[1], item[0]))


def _leader(causes: Sequence[tuple[str, int]]) -> str | None:
    """The most frequent main root cause, when no other feature ties with it."""
    if not causes or (len(causes) > 1 and causes[1][1] == causes[0][1]):
        return None
    return causes[0][0]


def _causes_words(causes: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{feature} ({count})" for feature, count in causes[:3])


def _feature_counts(causes: Sequence[tuple[str, int]], limit: int = 3) -> list[FeatureCount]:
    return [FeatureCount(feature=f, count=n) for f, n in causes[:limit]]


def _module_fact(query: Query) -> str:
    return query.module.value if query.module else "all"


def _period(time_range: TimeRange | None) -> str:
    return time_range.label if time_range is not None else "in the whole store"


def _range_facts(time_range: TimeRange | None) -> dict[str, Any]:
    return {
        "period": _period(time_range),
        "since": _iso(time_range.start) if time_range else None,
        "until": _iso(time_range.end) if time_range else None,
    }


def _severity_adjective(query: Query) -> str:
    """'critical ', 'high+ ', 'low or critical ' or '' before the noun."""
    if not query.severities:
        return ""
    lowest = query.slots.min_severity
    if lowest is not None and lowest is not Severity.CRITICAL:
        return f"{lowest.value}+ "
    return f"{severity_words(query.severities)} "


def _by_module(tally: AnomalyTally) -> dict[str, int]:
    return {m.value: n for m, n in tally.by_module.items()}


def _by_severity(tally: AnomalyTally) -> dict[str, int]:
    return {s.value: n for s, n in tally.by_severity.items()}


def _severity_breakdown(tally: AnomalyTally) -> str:
    return ", ".join(f"{tally.by_severity[s]} {s.value}" for s in reversed(Severity) if tally.by_severity[s])


def _module_breakdown(tally: AnomalyTally) -> str:
    return ", ".join(f"{m.value} {n}" for m, n in tally.by_module.items() if n)


def _line(anomaly: Anomaly) -> str:
    cause = ""
    if anomaly.root_cause:
        top = anomaly.root_cause[0]
        cause = f", main cause {top.feature} ({ratio_written(top.contribution)}× usual)"
    return f"{when(anomaly.window_end)} {anomaly.module.value} {anomaly.severity.value}{cause}"


def _cite(store: Store, query: AnomalyQuery) -> list[Anomaly]:
    """The anomalies behind a figure, newest first, at most cite_cap of them."""
    return queries.fetch(store.repository, query, store.cite_cap).anomalies


def _nothing(query: Query, store: Store, what: str, time_range: TimeRange | None) -> Answer:
    text = f"No {what} in {query.scope_words()} {_period(time_range)}."
    answer = Answer(text=text, facts=NothingFound(module=_module_fact(query), **_range_facts(time_range)))
    if _point_to_latest(query, store, answer) is None:
        answer.text += " The anomaly store holds no anomalies for it at all."
    return answer


def _point_to_latest(query: Query, store: Store, answer: Answer) -> Anomaly | None:
    """Tell an answer that found nothing when the newest anomaly of the asked modules is; None: none."""
    modules = frozenset(query.modules) if query.modules else None
    page = store.repository.find(AnomalyQuery(modules=modules, limit=1))
    newest = page.items[0] if page.items else None
    if newest is not None:
        answer.text += (
            f" The latest {query.scope_words()} anomaly in the store is at {when(newest.window_end)}."
        )
        if isinstance(answer.facts, NothingFound | NotExplained):
            answer.facts.latest_time = newest.window_end.isoformat()
            answer.facts.latest_anomaly_id = newest.id
        answer.cited.append(newest.id)
        answer.shown.append(newest)
    return newest


def _timeline(
    store: Store, scope: AnomalyQuery, tally: AnomalyTally, time_range: TimeRange | None, now: datetime
) -> list[dict[str, object]]:
    """Counts per hour (up to two days), day (up to two months) or week, oldest first, from the store."""
    start = time_range.start if time_range and time_range.start else tally.earliest
    end = time_range.end if time_range and time_range.end else (now if time_range else tally.latest)
    if start is None or end is None:
        return []
    end = max(end, tally.latest or end)
    step, start = _bucketing(start, end)
    buckets = min(24 * 62, max(1, -(-(end - start) // step)))
    counts = store.repository.histogram(scope, start, step, buckets)
    return [{"bucket": (start + i * step).isoformat(), "count": n} for i, n in enumerate(counts)]


def _bucketing(start: datetime, end: datetime) -> tuple[timedelta, datetime]:
    """The bucket length for a span and the span's start floored to it."""
    if end - start <= timedelta(days=2):
        return timedelta(hours=1), start.replace(minute=0, second=0, microsecond=0)
    midnight = datetime.combine(start.date(), time(0))
    if end - start <= timedelta(days=62):
        return timedelta(days=1), midnight
    return timedelta(weeks=1), midnight


# --- count and list -----------------------------------------------------------------------------------------


def list_anomalies(query: Query, store: Store) -> Answer:
    time_range, feature = query.time_range, query.feature
    scope = query.store_query(time_range, feature=feature)
    tally = store.repository.tally(scope)
    what = f"{_severity_adjective(query)}{_noun(tally.total)}" + (f" involving {feature}" if feature else "")
    if tally.total == 0:
        return _nothing(query, store, what, time_range)
    causes = _ranked_causes(tally)
    ranked = store.repository.top(
        query.store_query(time_range, feature=feature, limit=store.shown), AnomalyOrder.MOST_SEVERE
    )
    cited = _cite(store, scope)
    text = (
        f"{tally.total} {what} in {query.scope_words()} {_period(time_range)} ({_severity_breakdown(tally)})"
    )
    if not query.module:
        text += f"; by module: {_module_breakdown(tally)}"
    text += "."
    if causes:
        text += f" Main root causes: {_causes_words(causes)}."
    text += " Most severe first: " + "; ".join(_line(a) for a in ranked[:5]) + "."
    facts = ListFacts(
        module=_module_fact(query),
        count=tally.total,
        min_severity=query.slots.min_severity.value if query.slots.min_severity else None,
        severities=sorted(s.value for s in query.severities),
        feature=feature,
        by_module=_by_module(tally),
        by_severity=_by_severity(tally),
        top_feature=_leader(causes),
        top_feature_count=causes[0][1] if causes else 0,
        top_features=_feature_counts(causes),
        most_severe_id=ranked[0].id,
        latest_time=_iso(tally.latest),
        cited_all=len(cited) == tally.total,
        **_range_facts(time_range),
    )
    data = {
        "by_module": facts.by_module,
        "by_severity": facts.by_severity,
        "top_features": [{"feature": f, "count": n} for f, n in causes[:10]],
        "timeline": _timeline(store, scope, tally, time_range, query.now),
    }
    return Answer(text=text, facts=facts, cited=[a.id for a in cited], shown=ranked, data=data)


# --- explain one anomaly ------------------------------------------------------------------------------------


def _asked_moment(query: Query) -> tuple[datetime, bool]:
    """The datetime a time of day refers to, and whether the day was named (else its latest occurrence)."""
    slots = query.slots
    assert slots.at_time is not None
    if slots.at_date is not None:
        return datetime.combine(slots.at_date, slots.at_time), True
    now = query.now
    day: date = now.date() if slots.at_time <= now.time() else now.date() - timedelta(days=1)
    return datetime.combine(day, slots.at_time), False


def _explain_target(query: Query, store: Store) -> tuple[list[Anomaly], str | None]:
    """The anomalies the question points at (most severe first) or, when none, why not."""
    slots, repository = query.slots, store.repository
    if slots.anomaly_id is not None:
        try:
            return [repository.get(slots.anomaly_id)], None
        except NotFoundError:
            return [], f"There is no anomaly with id {slots.anomaly_id} in the store."
    modules = frozenset(query.modules) if query.modules else None
    if slots.at_time is not None:
        moment, day_named = _asked_moment(query)
        found = queries.at_minute(repository, modules, moment, NEAREST_TOLERANCE)
        if not found and not day_named:
            found = queries.at_time_of_day(
                repository, modules, slots.at_time, query.now + timedelta(minutes=1), store.cite_cap
            )
        if query.feature is not None:
            found = [a for a in found if any(c.feature == query.feature for c in a.root_cause)]
        if not found:
            at = when(moment) if day_named else slots.at_time.strftime("%H:%M")
            minutes = int(NEAREST_TOLERANCE.total_seconds() // 60)
            return (
                [],
                f"I found no {query.scope_words()} anomaly at {at} (nor within {minutes} minutes of it).",
            )
        return queries.most_severe_first(found), None
    scope = query.store_query(query.time_range, feature=query.feature, limit=1)
    if query.time_range is None:
        found = repository.find(scope).items  # no time named: the latest one
    else:
        found = repository.top(scope, AnomalyOrder.MOST_SEVERE)
    if not found:
        return [], f"I found no {query.scope_words()} anomaly {_period(query.time_range)} to explain."
    return found, None


def explain_anomaly(query: Query, store: Store) -> Answer:
    found, problem = _explain_target(query, store)
    if problem is not None:
        missing = NotExplained(anomaly_id=query.slots.anomaly_id)
        if query.slots.at_time is not None:
            moment, day_named = _asked_moment(query)
            missing.asked_time = moment.isoformat() if day_named else query.slots.at_time.strftime("%H:%M")
            missing.tolerance_minutes = int(NEAREST_TOLERANCE.total_seconds() // 60)
        answer = Answer(text=problem, facts=missing)
        _point_to_latest(query, store, answer)
        return answer
    target = found[0]
    ratio = score_ratio(target)
    text = (
        f"The {target.module.value} anomaly at {when(target.window_end)} (source {target.source}) was "
        f"flagged because its score {score_written(target.score)} was {ratio_written(ratio)}× the threshold "
        f"{score_written(target.threshold)} of model {target.model_name} {target.model_version}; "
        f"severity {target.severity.value}."
    )
    causes = [
        CauseFacts(
            feature=c.feature,
            contribution=ratio_written(c.contribution),
            observed=score_written(c.observed),
            expected=score_written(c.expected),
        )
        for c in target.root_cause[:3]
    ]
    if causes:
        top = causes[0]
        text += (
            f" Main root cause: {top.feature}, at {top.contribution}× its usual error "
            f"(observed {top.observed}, expected {top.expected})."
        )
        if len(causes) > 1:
            text += " Next: " + ", ".join(f"{c.feature} ({c.contribution}×)" for c in causes[1:]) + "."
    if len(found) > 1:
        text += f" {len(found)} anomalies match that time; this is the most severe of them."
    facts = ExplainFacts(
        anomaly_id=target.id,
        module=target.module.value,
        source=target.source,
        time=target.window_end.isoformat(),
        window_start=target.window_start.isoformat(),
        score=score_written(target.score),
        threshold=score_written(target.threshold),
        ratio=ratio_written(ratio),
        severity=target.severity.value,
        model=f"{target.model_name} {target.model_version}",
        top_feature=target.top_feature,
        matches=len(found),
        root_cause=causes,
    )
    data = {"root_cause": [c.__dict__ for c in causes]}
    return Answer(text=text, facts=facts, cited=[a.id for a in found], shown=found[: store.shown], data=data)


# --- most frequent root cause -------------------------------------------------------------------------------


def top_root_cause(query: Query, store: Store) -> Answer:
    time_range = query.time_range
    scope = query.store_query(time_range)
    tally = store.repository.tally(scope)
    causes = _ranked_causes(tally)
    if not causes:
        return _nothing(query, store, f"{_severity_adjective(query)}anomalies with a root cause", time_range)
    with_cause = sum(n for _, n in causes)
    best, best_count = causes[0]
    tied = [f for f, n in causes if n == best_count]
    share = round(100 * best_count / with_cause)
    period = f"Over {query.scope_words()} {_period(time_range)}"
    if len(tied) > 1:
        text = f"{period}, {' and '.join(tied)} tie as the most frequent main root cause, {best_count} each"
    else:
        text = f"{period}, {best} is most often the main root cause"
    text += f": {best_count} of {tally.total} {_noun(tally.total)} ({share}%)."
    rest = [(f, n) for f, n in causes if f not in tied][:3]
    if rest:
        text += " Next: " + ", ".join(f"{f} ({n})" for f, n in rest) + "."
    modules_of: dict[str, list[str]] = {}
    for module, module_causes in tally.top_features_by_module.items():
        for feature in module_causes:
            modules_of.setdefault(feature, []).append(module.value)
    ranking = [RankedCause(feature=f, count=n, modules=sorted(modules_of.get(f, []))) for f, n in causes]
    facts = TopCauseFacts(
        module=_module_fact(query),
        count=tally.total,
        top_feature=best,
        top_feature_count=best_count,
        tied=tied,
        share_pct=share,
        ranking=ranking[:10],
        **_range_facts(time_range),
    )
    shown = [
        a
        for a in store.repository.top(
            query.store_query(time_range, feature=tied[0], limit=50), AnomalyOrder.MOST_SEVERE
        )
        if a.top_feature in tied
    ][: store.shown]
    data = {"top_features": [r.__dict__ for r in ranking[:10]]}
    return Answer(text=text, facts=facts, cited=[a.id for a in _cite(store, scope)], shown=shown, data=data)


# --- summary ------------------------------------------------------------------------------------------------


def summary(query: Query, store: Store) -> Answer:
    time_range = query.time_range
    scope = query.store_query(time_range)
    tally = store.repository.tally(scope)
    if tally.total == 0:
        return _nothing(query, store, f"{_severity_adjective(query)}anomalies", time_range)
    per_module: dict[str, ModuleSummary] = {}
    parts = []
    for module in query.modules or tuple(known_modules()):
        count, latest = tally.by_module[module], tally.latest_by_module[module]
        leader = _leader(_ranked(tally.top_features_by_module[module]))
        per_module[module.value] = ModuleSummary(count=count, top_feature=leader, latest_time=_iso(latest))
        if count and latest is not None:
            detail = f"latest {when(latest)}" + (f", top cause {leader}" if leader else "")
            parts.append(f"{module.value} {count} ({detail})")
        else:
            parts.append(f"{module.value} 0")
    ranked = store.repository.top(query.store_query(time_range, limit=store.shown), AnomalyOrder.MOST_SEVERE)
    text = (
        f"Summary for {query.scope_words()} {_period(time_range)}: {tally.total} {_noun(tally.total)} "
        f"({_severity_breakdown(tally)}). By module: " + "; ".join(parts) + "."
    )
    text += f" Most severe: {_line(ranked[0])}."
    facts = SummaryFacts(
        module=_module_fact(query),
        count=tally.total,
        by_module=_by_module(tally),
        by_severity=_by_severity(tally),
        modules=per_module,
        most_severe_id=ranked[0].id,
        **_range_facts(time_range),
    )
    data = {
        "by_module": facts.by_module,
        "by_severity": facts.by_severity,
        "modules": {m: s.__dict__ for m, s in per_module.items()},
        "timeline": _timeline(store, scope, tally, time_range, query.now),
    }
    return Answer(text=text, facts=facts, cited=[a.id for a in _cite(store, scope)], shown=ranked, data=data)


# --- compare periods ----------------------------------------------------------------------------------------


def _periods(query: Query) -> tuple[TimeRange, TimeRange]:
    ranges, now = query.slots.time_ranges, query.now
    if len(ranges) >= 2 and (ranges[1].start, ranges[1].end) != (ranges[0].start, ranges[0].end):
        return ranges[0], ranges[1]
    if ranges and ranges[0].start is not None:
        only = ranges[0]
        # "compare with yesterday": a period that is over is compared with the one that follows it (today);
        # a current one ("today", "the last 24 h", or twice the same span) with the one before it.
        if only.end is not None and only.end <= now:
            return only.following(now), only
        return only, only.previous(now)
    today = datetime.combine(now.date(), time(0))
    yesterday = today - timedelta(days=1)
    return (
        TimeRange(today, today + timedelta(days=1), f"today ({today.date().isoformat()})"),
        TimeRange(yesterday, today, f"yesterday ({yesterday.date().isoformat()})"),
    )


def compare_periods(query: Query, store: Store) -> Answer:
    first, second = _periods(query)
    scope_a, scope_b = query.store_query(first), query.store_query(second)
    a, b = store.repository.tally(scope_a), store.repository.tally(scope_b)
    delta = a.total - b.total
    change_pct = round(100 * delta / b.total) if b.total else None
    text = (
        f"{query.scope_words().capitalize()}: {a.total} {_noun(a.total)} {first.label} "
        f"versus {b.total} {second.label}"
    )
    if delta == 0:
        text += ", the same number."
    else:
        text += f", {abs(delta)} {'more' if delta > 0 else 'fewer'} in the first period"
        text += f" ({change_pct:+d}%)." if change_pct is not None else "."
    if not query.module and (a.total or b.total):
        text += f" By module: {_module_breakdown(a) or 'none'} versus {_module_breakdown(b) or 'none'}."
    causes_a, causes_b = _ranked_causes(a), _ranked_causes(b)
    if causes_a or causes_b:
        words_a, words_b = _causes_words(causes_a) or "none", _causes_words(causes_b) or "none"
        text += f" Main root causes: {words_a} versus {words_b}."
    facts = ComparePeriodsFacts(
        module=_module_fact(query),
        period_a=first.label,
        period_b=second.label,
        count_a=a.total,
        count_b=b.total,
        delta=delta,
        change_pct=change_pct,
        top_feature_a=_leader(causes_a),
        top_feature_b=_leader(causes_b),
        by_module_a=_by_module(a),
        by_module_b=_by_module(b),
        top_features_a=_feature_counts(causes_a),
        top_features_b=_feature_counts(causes_b),
    )
    periods = [
        {
            "label": r.label,
            "since": _iso(r.start),
            "until": _iso(r.end),
            "count": t.total,
            "by_module": _by_module(t),
            "by_severity": _by_severity(t),
        }
        for r, t in ((first, a), (second, b))
    ]
    cited = [*_cite(store, scope_a), *_cite(store, scope_b)]
    shown = queries.most_severe_first(cited)[: store.shown]
    return Answer(text=text, facts=facts, cited=[x.id for x in cited], shown=shown, data={"periods": periods})


# --- compare modules ----------------------------------------------------------------------------------------


def compare_modules(query: Query, store: Store) -> Answer:
    time_range = query.time_range
    modules = query.modules if len(query.modules) >= 2 else tuple(known_modules())
    scope = query.with_slots(modules=modules).store_query(time_range)
    tally = store.repository.tally(scope)
    counts = {module.value: tally.by_module[module] for module in modules}
    cited = _cite(store, scope)
    most_count = max(counts.values())
    most = [m for m, n in counts.items() if n == most_count]
    delta = counts[modules[0].value] - counts[modules[1].value] if len(modules) == 2 else None
    what = f"{_severity_adjective(query)}anomalies"
    listing = " versus ".join(f"{m} {n}" for m, n in counts.items())
    text = f"{what.capitalize()} {_period(time_range)}: {listing}."
    if most_count == 0:
        text += " None of them has any."
    elif len(most) > 1:
        text += f" {', '.join(most)} tie with the most, {most_count} each."
    else:
        text += f" {most[0]} has the most."
    facts = CompareModulesFacts(
        counts=counts,
        most=most,
        delta=delta,
        severities=sorted(s.value for s in query.severities),
        **_range_facts(time_range),
    )
    shown = queries.most_severe_first(cited)[: store.shown]
    return Answer(
        text=text, facts=facts, cited=[a.id for a in cited], shown=shown, data={"by_module": counts}
    )


# --- is a sensor involved -----------------------------------------------------------------------------------


def sensor_involvement(query: Query, store: Store) -> Answer:
    known = sorted(store.known_features)
    if not query.features:
        listing = ", ".join(known[:12]) + (" …" if len(known) > 12 else "")
        return Answer(
            text=f"Which sensor do you mean? Known sensors: {listing or 'none (no model is loaded)'}.",
            facts=WhichSensor(known_features=known),
        )
    time_range = query.time_range
    where = f"{query.scope_words()} {_period(time_range)}"
    sentences: list[str] = []
    per_feature: dict[str, Involvement] = {}
    cited: list[str] = []
    shown: list[Anomaly] = []
    for feature in query.features[:3]:
        scope = query.store_query(time_range, feature=feature)
        tally = store.repository.tally(scope)
        involved = _cite(store, scope)
        as_top = tally.by_top_feature.get(feature, 0)
        entry = Involvement(
            feature=feature,
            module=_module_fact(query),
            known_feature=feature in store.known_features,
            involved=tally.total > 0,
            count=tally.total,
            top_cause_count=as_top,
            by_module=_by_module(tally),
            latest_time=_iso(tally.latest),
            latest_anomaly_id=involved[0].id if involved else None,
        )
        if involved:
            contribution = max(c.contribution for a in involved for c in a.root_cause if c.feature == feature)
            entry.max_contribution = ratio_written(contribution)
            sentences.append(
                f"Yes: {feature} is in the root cause of {tally.total} {_noun(tally.total)} in {where}, "
                f"the main cause in {as_top} (by module: {_module_breakdown(tally)}). "
                f"Latest: {_line(involved[0])}; its largest contribution was {entry.max_contribution}× its "
                "usual error."
            )
        else:
            sentences.append(f"No: {feature} is not in the root cause of any anomaly in {where}.")
        if not entry.known_feature:
            sentences.append(f"{feature} is not a feature of any loaded model.")
        per_feature[feature] = entry
        cited.extend(a.id for a in involved)
        shown.extend(queries.most_severe_first(involved)[: store.shown])
    first = per_feature[query.features[0]]
    facts = InvolvementFacts(**first.__dict__, features=per_feature, **_range_facts(time_range))
    data = {"features": [e.__dict__ for e in per_feature.values()]}
    return Answer(
        text=" ".join(sentences), facts=facts, cited=list(dict.fromkeys(cited)), shown=shown, data=data
    )


# --- newest, oldest, highest and lowest score ---------------------------------------------------------------

_RANKINGS = {
    Intent.LATEST_ANOMALY: (None, "latest"),
    Intent.FIRST_ANOMALY: (AnomalyOrder.OLDEST, "first"),
    Intent.HIGHEST_SCORE: (AnomalyOrder.HIGHEST_SCORE, "highest-scoring"),
    Intent.LOWEST_SCORE: (AnomalyOrder.LOWEST_SCORE, "lowest-scoring"),
}


def ranked_anomalies(query: Query, store: Store) -> Answer:
    """The newest, oldest, highest- or lowest-scoring anomaly, or N of them ("the last 3")."""
    order, word = _RANKINGS[query.operation]
    limit = query.slots.limit or 1
    scope = query.store_query(query.time_range, feature=query.feature, limit=limit)
    found = store.repository.find(scope).items if order is None else store.repository.top(scope, order)
    qualifier = f"{_severity_adjective(query)}{query.module.value + ' ' if query.module else ''}"
    if not found:
        return _nothing(query, store, f"{qualifier}anomalies", query.time_range)
    in_scope = store.repository.tally(query.store_query(query.time_range, feature=query.feature)).total
    lines = [AnomalyLine.of(a) for a in found]
    period = "" if query.time_range is None else f" {query.time_range.label}"
    if len(found) == 1:
        top = found[0]
        text = (
            f"The {word} {qualifier}anomaly{period} was at {when(top.window_end)}: {top.module.value} "
            f"({top.source}), severity {top.severity.value}, score {score_written(top.score)} against "
            f"threshold {score_written(top.threshold)}"
        )
        text += f", main root cause {top.top_feature}." if top.top_feature else "."
    else:
        text = f"The {len(found)} {word} {qualifier}anomalies{period}: " + "; ".join(
            f"{when(a.window_end)} {a.module.value} {a.severity.value}, score {score_written(a.score)}"
            for a in found
        )
        text += "."
        if len(found) < limit:
            text += f" There are only {len(found)}."
    facts = RankedFacts(
        **lines[0].__dict__,
        order=word,
        limit=limit,
        of_count=in_scope,
        anomalies=lines,
        **_range_facts(query.time_range),
    )
    return Answer(text=text, facts=facts, cited=[a.id for a in found], shown=found)


# --- share --------------------------------------------------------------------------------------------------


def share(query: Query, store: Store) -> Answer:
    """What share of the anomalies in scope are of a severity set, involve a sensor, or are in a module."""
    time_range = query.time_range
    if query.severities:
        whole = query.store_query(time_range, severities=frozenset())
        part = query.store_query(time_range)
        subset = f"are {severity_words(query.severities)} severity"
    elif query.features:
        whole = query.store_query(time_range, severities=frozenset())
        part = query.store_query(time_range, feature=query.feature, severities=frozenset())
        subset = f"involve {query.feature}"
    elif len(query.modules) == 1:
        whole = query.with_slots(modules=()).store_query(time_range)
        part = query.store_query(time_range)
        subset = f"are in {query.modules[0].value}"
        query = query.with_slots(modules=())
    else:
        examples = [
            "what share of machine anomalies are critical",
            "what percentage of anomalies involve P101",
        ]
        return Answer(
            text="Share of what? Name a severity, a sensor or a module, for example: "
            + " / ".join(f'"{e}"' for e in examples)
            + ".",
            facts=ClarifyFacts(needs="a severity, a sensor or a module", examples=examples),
        )
    total = store.repository.tally(whole).total
    if total == 0:
        return _nothing(query, store, "anomalies", time_range)
    count = store.repository.tally(part).total
    pct = round(100 * count / total, 1)
    text = (
        f"{pct}% of the {total} {_noun(total)} in {query.scope_words()} {_period(time_range)} {subset}: "
        f"{count} of {total}."
    )
    facts = ShareFacts(
        module=_module_fact(query),
        part=count,
        total=total,
        share_pct=pct,
        subset=subset,
        **_range_facts(time_range),
    )
    cited = _cite(store, part)
    return Answer(
        text=text,
        facts=facts,
        cited=[a.id for a in cited],
        shown=queries.most_severe_first(cited)[: store.shown],
        data={"part": count, "total": total},
    )


# --- trend --------------------------------------------------------------------------------------------------

DEFAULT_TREND_SPAN = timedelta(days=7)


def trend_direction(counts: Sequence[int]) -> tuple[str, float]:
    """rising / falling / flat from the least-squares line through the counts, and its change over the
    period (slope × (n − 1)). It must move by at least one anomaly per bucket and a fifth of the mean."""
    n = len(counts)
    if n < 2:
        return "flat", 0.0
    mean_x, mean_y = (n - 1) / 2, sum(counts) / n
    slope = sum((i - mean_x) * (c - mean_y) for i, c in enumerate(counts)) / sum(
        (i - mean_x) ** 2 for i in range(n)
    )
    change = slope * (n - 1)
    if abs(change) < max(1.0, 0.2 * mean_y):
        return "flat", round(change, 1)
    return ("rising" if change > 0 else "falling"), round(change, 1)


def trend(query: Query, store: Store) -> Answer:
    time_range = query.time_range
    now = query.now.replace(microsecond=0)
    if time_range is None or time_range.start is None:
        start = now - DEFAULT_TREND_SPAN
        time_range = TimeRange(start, None, f"in the last 7 days (since {start.strftime('%Y-%m-%d %H:%M')})")
    assert time_range.start is not None
    start, end = time_range.start.replace(microsecond=0), time_range.end or now
    step = timedelta(hours=1) if end - start <= timedelta(days=2) else timedelta(days=1)
    if end - start > timedelta(days=62):
        step = timedelta(weeks=1)
    buckets = max(1, -(-(end - start) // step))
    scope = query.store_query(time_range)
    counts = store.repository.histogram(scope, start, step, buckets)
    direction, change = trend_direction(counts)
    bucket = {timedelta(hours=1): "hour", timedelta(days=1): "day"}.get(step, "week")
    half = len(counts) // 2
    total = sum(counts)
    text = (
        f"{query.scope_words().capitalize()} {_period(time_range)}: {direction} "
        f"({total} {_noun(total)}; per {bucket}: {', '.join(str(c) for c in counts)})."
    )
    if direction != "flat":
        text += f" The fitted line changes by {change:+} per {bucket} over the period."
    facts = TrendFacts(
        module=_module_fact(query),
        direction=direction,
        bucket=bucket,
        counts=counts,
        total=total,
        change=change,
        first_half=sum(counts[:half]),
        second_half=sum(counts[half:]),
        **_range_facts(time_range),
    )
    answer = Answer(text=text, facts=facts, cited=[a.id for a in _cite(store, scope)])
    answer.data = {
        "timeline": [{"bucket": (start + i * step).isoformat(), "count": c} for i, c in enumerate(counts)]
    }
    if total == 0:
        _point_to_latest(query, store, answer)
    return answer


# --- help, out of scope -------------------------------------------------------------------------------------

CAPABILITIES = {
    Intent.LIST_ANOMALIES: "how many anomalies, and which, in a module over a period",
    Intent.EXPLAIN_ANOMALY: "why a given anomaly was flagged (by time or id)",
    Intent.TOP_ROOT_CAUSE: "which sensor is most often the root cause",
    Intent.SUMMARY: "a summary across all modules",
    Intent.COMPARE_PERIODS: "how two periods compare (today and yesterday by default)",
    Intent.COMPARE_MODULES: "how modules compare",
    Intent.TREND: "whether anomalies are rising or falling",
    Intent.SENSOR_INVOLVEMENT: "whether a sensor is involved in any anomaly",
    Intent.LATEST_ANOMALY: "the latest or first anomalies, or the highest scores",
    Intent.SHARE: "what share of anomalies are of a severity, a sensor or a module",
    Intent.OPEN_INCIDENTS: "which incidents are open, how many there were, who acknowledged the latest",
}

_REASONS = {
    "out_of_scope": "I can only answer questions about the anomalies plantwatch has detected.",
    "future": "I only know anomalies that have already been detected; I cannot say what will happen.",
    "unsure": "I am not sure what you are asking, so I will not guess a figure.",
}


def help_reply(query: Query, store: Store, reason: str | None = None, unread: str | None = None) -> Answer:
    opener = _REASONS[reason] if reason else "I answer questions about the anomalies plantwatch has detected."
    if unread is not None:
        opener = f"I could not read the time in {unread!r}, so I will not guess a figure."
    examples = [INTENT_EXAMPLES[intent][0] for intent in CAPABILITIES]
    text = (
        f"{opener} Ask me about: "
        + "; ".join(CAPABILITIES.values())
        + ". Name a module (energy, machine, cyber), a period (the last hour, today, yesterday, this week,"
        + " since Monday, in March, between two times)"
        + " or a sensor. For example: "
        + " / ".join(f'"{e}"' for e in examples[:4])
        + "."
    )
    facts = HelpFacts(
        capabilities=[i.value for i in CAPABILITIES],
        modules=[m.value for m in known_modules()],
        reason=reason,
    )
    return Answer(
        text=text, facts=facts, data={"examples": examples, "known_features": sorted(store.known_features)}
    )


HANDLERS: dict[Intent, Callable[[Query, Store], Answer]] = {
    Intent.LIST_ANOMALIES: list_anomalies,
    Intent.EXPLAIN_ANOMALY: explain_anomaly,
    Intent.TOP_ROOT_CAUSE: top_root_cause,
    Intent.SUMMARY: summary,
    Intent.COMPARE_PERIODS: compare_periods,
    Intent.COMPARE_MODULES: compare_modules,
    Intent.SENSOR_INVOLVEMENT: sensor_involvement,
    Intent.LATEST_ANOMALY: ranked_anomalies,
    Intent.FIRST_ANOMALY: ranked_anomalies,
    Intent.HIGHEST_SCORE: ranked_anomalies,
    Intent.LOWEST_SCORE: ranked_anomalies,
    Intent.SHARE: share,
    Intent.TREND: trend,
    Intent.HELP: lambda query, store: help_reply(query, store),
    Intent.UNKNOWN: lambda query, store: help_reply(query, store, "out_of_scope"),
}
