"""Answers per intent: run typed queries on the store and fill a template from their results.

Every figure a template writes comes from the anomalies fetched (or from `now`, for the range it names);
`facts` holds the same figures, rounded as written, and `cited` the ids of the anomalies they came from.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from plantwatch.domain.anomaly import Anomaly, Severity
from plantwatch.domain.errors import NotFoundError
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import AnomalyQuery, AnomalyRepository
from plantwatch.services.chatbot import queries
from plantwatch.services.chatbot.intents import INTENT_EXAMPLES, Intent
from plantwatch.services.chatbot.slots import Slots, TimeRange

# How far from a named time of day the nearest anomaly may be when none was flagged in that very minute.
NEAREST_TOLERANCE = timedelta(minutes=30)


@dataclass
class Draft:
    text: str
    facts: dict[str, Any] = field(default_factory=dict)
    cited: list[str] = field(default_factory=list)
    shown: list[Anomaly] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    repository: AnomalyRepository
    slots: Slots
    now: datetime
    known_features: dict[str, set[Module]]
    scan_cap: int = 5000
    shown: int = 10


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S" if moment.second else "%Y-%m-%d %H:%M")


def _g(value: float) -> float:
    """A score as written: three significant digits."""
    return float(f"{value:.3g}")


def _x(value: float) -> float:
    """A ratio as written: one decimal."""
    return round(value, 1)


def _anomalies(count: int | str) -> str:
    return "anomaly" if count in (1, "1") else "anomalies"


def _leader(causes: Sequence[tuple[str, int]]) -> str | None:
    """The most frequent main root cause, when no other feature ties with it."""
    if not causes or (len(causes) > 1 and causes[1][1] == causes[0][1]):
        return None
    return causes[0][0]


def _causes_words(causes: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{feature} ({count})" for feature, count in causes[:3])


def _module_fact(slots: Slots) -> str:
    return slots.module.value if slots.module else "all"


def _scope(slots: Slots) -> str:
    if not slots.modules:
        return "all modules"
    return " and ".join(m.value for m in slots.modules)


def _period(time_range: TimeRange | None) -> str:
    return time_range.label if time_range is not None else "in the whole store"


def _severity_words(slots: Slots) -> str:
    if slots.min_severity is None:
        return ""
    return (
        f"{slots.min_severity.value} "
        if slots.min_severity is Severity.CRITICAL
        else f"{slots.min_severity.value}+ "
    )


def _query(slots: Slots, time_range: TimeRange | None, feature: str | None = None) -> AnomalyQuery:
    return AnomalyQuery(
        module=slots.module,
        since=time_range.start if time_range else None,
        until=time_range.end if time_range else None,
        min_severity=slots.min_severity,
        feature=feature,
    )


def _fetch(ctx: Context, time_range: TimeRange | None, feature: str | None = None) -> queries.Fetched:
    fetched = queries.fetch(ctx.repository, _query(ctx.slots, time_range, feature), ctx.scan_cap)
    if len(ctx.slots.modules) > 1:
        wanted = set(ctx.slots.modules)
        return queries.Fetched([a for a in fetched.anomalies if a.module in wanted], fetched.truncated)
    return fetched


def _count_words(fetched: queries.Fetched) -> str:
    count = len(fetched.anomalies)
    return f"at least {count}" if fetched.truncated else str(count)


def _range_facts(time_range: TimeRange | None) -> dict[str, Any]:
    return {
        "period": _period(time_range),
        "since": time_range.start.isoformat() if time_range and time_range.start else None,
        "until": time_range.end.isoformat() if time_range and time_range.end else None,
    }


def _severity_breakdown(anomalies: Sequence[Anomaly]) -> str:
    counts = queries.count_by_severity(anomalies)
    return ", ".join(f"{counts[s.value]} {s.value}" for s in reversed(Severity) if counts[s.value])


def _module_breakdown(anomalies: Sequence[Anomaly]) -> str:
    counts = queries.count_by_module(anomalies)
    return ", ".join(f"{module} {count}" for module, count in counts.items() if count)


def _line(anomaly: Anomaly) -> str:
    cause = ""
    if anomaly.root_cause:
        top = anomaly.root_cause[0]
        cause = f", main cause {top.feature} ({_x(top.contribution)}× usual)"
    return f"{when(anomaly.window_end)} {anomaly.module.value} {anomaly.severity.value}{cause}"


def _empty(ctx: Context, what: str, time_range: TimeRange | None) -> Draft:
    """No anomaly matched: say so, and where the store's data is, so an empty period is not read as health."""
    text = f"No {what} in {_scope(ctx.slots)} {_period(time_range)}."
    text = text.replace("No anomaly ", "No anomalies ")
    facts: dict[str, Any] = {"count": 0, "module": _module_fact(ctx.slots)}
    facts.update(_range_facts(time_range))
    draft = Draft(text=text, facts=facts)
    if _point_to_latest(ctx, draft) is None:
        draft.text += " The anomaly store holds no anomalies for it at all."
        draft.facts["latest_time"] = None
    return draft


def _point_to_latest(ctx: Context, draft: Draft) -> Anomaly | None:
    """Tell a draft that found nothing when the newest anomaly of the asked module is; None: there is none."""
    newest = queries.latest(ctx.repository, ctx.slots.module)
    if newest is not None:
        draft.text += f" The latest {_scope(ctx.slots)} anomaly in the store is at {when(newest.window_end)}."
        draft.facts.update(latest_time=newest.window_end.isoformat(), latest_anomaly_id=newest.id)
        draft.cited.append(newest.id)
        draft.shown.append(newest)
    return newest


def list_anomalies(ctx: Context) -> Draft:
    time_range = ctx.slots.time_range
    feature = ctx.slots.feature
    fetched = _fetch(ctx, time_range, feature)
    anomalies = fetched.anomalies
    what = f"{_severity_words(ctx.slots)}{_anomalies(len(anomalies))}"
    what += f" involving {feature}" if feature else ""
    if not anomalies:
        return _empty(ctx, what, time_range)
    ranked = queries.most_severe_first(anomalies)
    causes = queries.top_causes(anomalies)
    text = f"{_count_words(fetched)} {what} in {_scope(ctx.slots)} {_period(time_range)}"
    text += f" ({_severity_breakdown(anomalies)})"
    if not ctx.slots.module:
        text += f"; by module: {_module_breakdown(anomalies)}"
    text += "."
    if causes:
        text += f" Main root causes: {_causes_words(causes)}."
    shown = ranked[: ctx.shown]
    text += " Most severe first: " + "; ".join(_line(a) for a in shown[:5]) + "."
    facts: dict[str, Any] = {
        "module": _module_fact(ctx.slots),
        "count": len(anomalies),
        "truncated": fetched.truncated,
        "min_severity": ctx.slots.min_severity.value if ctx.slots.min_severity else None,
        "feature": feature,
        "by_module": queries.count_by_module(anomalies),
        "by_severity": queries.count_by_severity(anomalies),
        "top_feature": _leader(causes),
        "top_feature_count": causes[0][1] if causes else 0,
        "top_features": [{"feature": f, "count": n} for f, n in causes[:3]],
        "most_severe_id": ranked[0].id,
        "latest_time": anomalies[0].window_end.isoformat(),
    }
    facts.update(_range_facts(time_range))
    data = {
        "by_module": facts["by_module"],
        "by_severity": facts["by_severity"],
        "top_features": [{"feature": f, "count": n} for f, n in causes[:10]],
        "timeline": _timeline(ctx, anomalies, time_range),
    }
    return Draft(text=text, facts=facts, cited=[a.id for a in anomalies], shown=shown, data=data)


def _timeline(
    ctx: Context, anomalies: Sequence[Anomaly], time_range: TimeRange | None
) -> list[dict[str, object]]:
    """Counts per hour or day over the asked range (an open range runs up to now), else over the anomalies."""
    if time_range is None:
        return queries.timeline(anomalies, None, None)
    end = time_range.end if time_range.end is not None else ctx.now
    return queries.timeline(anomalies, time_range.start, end)


def _asked_moment(slots: Slots, now: datetime) -> tuple[datetime, bool]:
    """The datetime a time of day refers to, and whether the day was named (else its latest occurrence)."""
    assert slots.at_time is not None
    if slots.at_date is not None:
        return datetime.combine(slots.at_date, slots.at_time), True
    day: date = now.date() if slots.at_time <= now.time() else now.date() - timedelta(days=1)
    return datetime.combine(day, slots.at_time), False


def _explain_target(ctx: Context) -> tuple[list[Anomaly], str | None]:
    """The anomalies the question points at (most severe first) or, when none, why not."""
    slots = ctx.slots
    if slots.anomaly_id is not None:
        try:
            return [ctx.repository.get(slots.anomaly_id)], None
        except NotFoundError:
            return [], f"There is no anomaly with id {slots.anomaly_id} in the store."
    feature = slots.feature
    if slots.at_time is not None:
        moment, day_named = _asked_moment(slots, ctx.now)
        found = queries.at_minute(ctx.repository, slots.module, moment, NEAREST_TOLERANCE)
        if not found and not day_named:
            found = queries.at_time_of_day(
                ctx.repository, slots.module, slots.at_time, ctx.now + timedelta(minutes=1), ctx.scan_cap
            )
        if feature is not None:
            found = [a for a in found if any(c.feature == feature for c in a.root_cause)]
        if not found:
            at = when(moment) if day_named else slots.at_time.strftime("%H:%M")
            minutes = int(NEAREST_TOLERANCE.total_seconds() // 60)
            return [], f"I found no {_scope(slots)} anomaly at {at} (nor within {minutes} minutes of it)."
        return queries.most_severe_first(found), None
    fetched = _fetch(ctx, slots.time_range, feature)
    if not fetched.anomalies:
        return [], f"I found no {_scope(slots)} anomaly {_period(slots.time_range)} to explain."
    if slots.time_range is None:
        return [fetched.anomalies[0]], None  # no time named: the latest one
    return queries.most_severe_first(fetched.anomalies)[:1], None


def explain_anomaly(ctx: Context) -> Draft:
    found, problem = _explain_target(ctx)
    if problem is not None:
        draft = Draft(text=problem, facts={"found": False, "anomaly_id": ctx.slots.anomaly_id})
        if ctx.slots.at_time is not None:
            moment, day_named = _asked_moment(ctx.slots, ctx.now)
            draft.facts["asked_time"] = (
                moment.isoformat() if day_named else ctx.slots.at_time.strftime("%H:%M")
            )
            draft.facts["tolerance_minutes"] = int(NEAREST_TOLERANCE.total_seconds() // 60)
        _point_to_latest(ctx, draft)
        return draft
    target = found[0]
    ratio = queries.score_ratio(target)
    text = (
        f"The {target.module.value} anomaly at {when(target.window_end)} (source {target.source}) was "
        f"flagged because its score {_g(target.score)} was {_x(ratio)}× the threshold {_g(target.threshold)} "
        f"of model "
        f"{target.model_name} {target.model_version}; severity {target.severity.value}."
    )
    causes = list(target.root_cause[:3])
    if causes:
        top = causes[0]
        text += (
            f" Main root cause: {top.feature}, at {_x(top.contribution)}× its usual error "
            f"(observed {_g(top.observed)}, expected {_g(top.expected)})."
        )
        if len(causes) > 1:
            text += " Next: " + ", ".join(f"{c.feature} ({_x(c.contribution)}×)" for c in causes[1:]) + "."
    if len(found) > 1:
        text += f" {len(found)} anomalies match that time; this is the most severe of them."
    facts: dict[str, Any] = {
        "found": True,
        "anomaly_id": target.id,
        "module": target.module.value,
        "source": target.source,
        "time": target.window_end.isoformat(),
        "window_start": target.window_start.isoformat(),
        "score": _g(target.score),
        "threshold": _g(target.threshold),
        "ratio": _x(ratio),
        "severity": target.severity.value,
        "model": f"{target.model_name} {target.model_version}",
        "top_feature": target.top_feature,
        "matches": len(found),
        "root_cause": [
            {
                "feature": c.feature,
                "contribution": _x(c.contribution),
                "observed": _g(c.observed),
                "expected": _g(c.expected),
            }
            for c in causes
        ],
    }
    data = {"root_cause": facts["root_cause"]}
    return Draft(text=text, facts=facts, cited=[a.id for a in found], shown=found[: ctx.shown], data=data)


def top_root_cause(ctx: Context) -> Draft:
    time_range = ctx.slots.time_range
    fetched = _fetch(ctx, time_range)
    anomalies = fetched.anomalies
    causes = queries.top_causes(anomalies)
    if not causes:
        return _empty(ctx, f"{_severity_words(ctx.slots)}anomalies with a root cause", time_range)
    with_cause = sum(n for _, n in causes)
    best, best_count = causes[0]
    tied = [f for f, n in causes if n == best_count]
    share = round(100 * best_count / with_cause)
    period = f"Over {_scope(ctx.slots)} {_period(time_range)}"
    if len(tied) > 1:
        text = f"{period}, {' and '.join(tied)} tie as the most frequent main root cause, {best_count} each"
    else:
        text = f"{period}, {best} is most often the main root cause"
    text += f": {best_count} of {_count_words(fetched)} {_anomalies(len(anomalies))} ({share}%)."
    rest = [(f, n) for f, n in causes if f not in tied][:3]
    if rest:
        text += " Next: " + ", ".join(f"{f} ({n})" for f, n in rest) + "."
    modules_of: dict[str, set[str]] = {}
    for anomaly in anomalies:
        if anomaly.top_feature is not None:
            modules_of.setdefault(anomaly.top_feature, set()).add(anomaly.module.value)
    ranking = [{"feature": f, "count": n, "modules": sorted(modules_of[f])} for f, n in causes]
    facts: dict[str, Any] = {
        "module": _module_fact(ctx.slots),
        "count": len(anomalies),
        "truncated": fetched.truncated,
        "top_feature": best,
        "top_feature_count": best_count,
        "tied": tied,
        "share_pct": share,
        "ranking": ranking[:10],
    }
    facts.update(_range_facts(time_range))
    shown = queries.most_severe_first(a for a in anomalies if a.top_feature in tied)[: ctx.shown]
    data = {"top_features": ranking[:10]}
    return Draft(text=text, facts=facts, cited=[a.id for a in anomalies], shown=shown, data=data)


def summary(ctx: Context) -> Draft:
    time_range = ctx.slots.time_range
    fetched = _fetch(ctx, time_range)
    anomalies = fetched.anomalies
    if not anomalies:
        return _empty(ctx, f"{_severity_words(ctx.slots)}anomalies", time_range)
    modules = ctx.slots.modules or tuple(Module)
    per_module: dict[str, dict[str, Any]] = {}
    parts = []
    for module in modules:
        own = [a for a in anomalies if a.module == module]
        causes = queries.top_causes(own)
        per_module[module.value] = {
            "count": len(own),
            "top_feature": _leader(causes),
            "latest_time": own[0].window_end.isoformat() if own else None,
        }
        if own:
            leader = _leader(causes)
            detail = f"latest {when(own[0].window_end)}" + (f", top cause {leader}" if leader else "")
            parts.append(f"{module.value} {len(own)} ({detail})")
        else:
            parts.append(f"{module.value} 0")
    text = (
        f"Summary for {_scope(ctx.slots)} {_period(time_range)}: {_count_words(fetched)} "
        f"{_anomalies(len(anomalies))} "
        f"({_severity_breakdown(anomalies)}). By module: " + "; ".join(parts) + "."
    )
    ranked = queries.most_severe_first(anomalies)
    text += f" Most severe: {_line(ranked[0])}."
    facts: dict[str, Any] = {
        "module": _module_fact(ctx.slots),
        "count": len(anomalies),
        "truncated": fetched.truncated,
        "by_module": queries.count_by_module(anomalies),
        "by_severity": queries.count_by_severity(anomalies),
        "modules": per_module,
        "most_severe_id": ranked[0].id,
    }
    facts.update(_range_facts(time_range))
    data = {
        "by_module": facts["by_module"],
        "by_severity": facts["by_severity"],
        "modules": per_module,
        "timeline": _timeline(ctx, anomalies, time_range),
    }
    return Draft(
        text=text, facts=facts, cited=[a.id for a in anomalies], shown=ranked[: ctx.shown], data=data
    )


def _periods(ctx: Context) -> tuple[TimeRange, TimeRange]:
    ranges = ctx.slots.time_ranges
    if len(ranges) >= 2 and (ranges[1].start, ranges[1].end) != (ranges[0].start, ranges[0].end):
        return ranges[0], ranges[1]
    if ranges and ranges[0].start is not None:
        only = ranges[0]
        # "compare with yesterday": a period that is over is compared with the one that follows it (today);
        # a current one ("today", "the last 24 h", or twice the same span) with the one before it.
        if only.end is not None and only.end <= ctx.now:
            return only.following(ctx.now), only
        return only, only.previous(ctx.now)
    today = datetime.combine(ctx.now.date(), time(0))
    yesterday = today - timedelta(days=1)
    return (
        TimeRange(today, today + timedelta(days=1), f"today ({today.date().isoformat()})"),
        TimeRange(yesterday, today, f"yesterday ({yesterday.date().isoformat()})"),
    )


def compare_periods(ctx: Context) -> Draft:
    first, second = _periods(ctx)
    fetched_first, fetched_second = _fetch(ctx, first), _fetch(ctx, second)
    a, b = fetched_first.anomalies, fetched_second.anomalies
    delta = len(a) - len(b)
    change_pct = round(100 * delta / len(b)) if b else None
    scope = _scope(ctx.slots)
    text = (
        f"{scope.capitalize()}: {_count_words(fetched_first)} {_anomalies(len(a))} {first.label} "
        f"versus {_count_words(fetched_second)} {second.label}"
    )
    if delta == 0:
        text += ", the same number."
    else:
        text += f", {abs(delta)} {'more' if delta > 0 else 'fewer'} in the first period"
        text += f" ({change_pct:+d}%)." if change_pct is not None else "."
    if not ctx.slots.module and (a or b):
        text += f" By module: {_module_breakdown(a) or 'none'} versus {_module_breakdown(b) or 'none'}."
    causes_a, causes_b = queries.top_causes(a), queries.top_causes(b)
    if causes_a or causes_b:
        words_a, words_b = _causes_words(causes_a) or "none", _causes_words(causes_b) or "none"
        text += f" Main root causes: {words_a} versus {words_b}."
    periods = []
    for time_range, anomalies in ((first, a), (second, b)):
        periods.append(
            {
                "label": time_range.label,
                "since": time_range.start.isoformat() if time_range.start else None,
                "until": time_range.end.isoformat() if time_range.end else None,
                "count": len(anomalies),
                "by_module": queries.count_by_module(anomalies),
                "by_severity": queries.count_by_severity(anomalies),
            }
        )
    facts: dict[str, Any] = {
        "module": _module_fact(ctx.slots),
        "period_a": first.label,
        "period_b": second.label,
        "count_a": len(a),
        "count_b": len(b),
        "delta": delta,
        "change_pct": change_pct,
        "top_feature_a": _leader(causes_a),
        "top_feature_b": _leader(causes_b),
        "by_module_a": queries.count_by_module(a),
        "by_module_b": queries.count_by_module(b),
        "top_features_a": [{"feature": f, "count": n} for f, n in causes_a[:3]],
        "top_features_b": [{"feature": f, "count": n} for f, n in causes_b[:3]],
        "truncated": fetched_first.truncated or fetched_second.truncated,
    }
    shown = queries.most_severe_first([*a, *b])[: ctx.shown]
    return Draft(
        text=text, facts=facts, cited=[x.id for x in (*a, *b)], shown=shown, data={"periods": periods}
    )


def sensor_involvement(ctx: Context) -> Draft:
    known = sorted(ctx.known_features)
    if not ctx.slots.features:
        listing = ", ".join(known[:12]) + (" …" if len(known) > 12 else "")
        return Draft(
            text=f"Which sensor do you mean? Known sensors: {listing or 'none (no model is loaded)'}.",
            facts={"feature": None, "known_features": known},
        )
    time_range = ctx.slots.time_range
    sentences: list[str] = []
    per_feature: dict[str, dict[str, Any]] = {}
    cited: list[str] = []
    shown: list[Anomaly] = []
    for feature in ctx.slots.features[:3]:
        fetched = _fetch(ctx, time_range, feature)
        involved = fetched.anomalies
        as_top = [a for a in involved if a.top_feature == feature]
        entry: dict[str, Any] = {
            "feature": feature,
            "module": _module_fact(ctx.slots),
            "known_feature": feature in ctx.known_features,
            "involved": bool(involved),
            "count": len(involved),
            "top_cause_count": len(as_top),
            "by_module": queries.count_by_module(involved),
            "latest_time": involved[0].window_end.isoformat() if involved else None,
            "latest_anomaly_id": involved[0].id if involved else None,
        }
        where = f"{_scope(ctx.slots)} {_period(time_range)}"
        if involved:
            contribution = max(c.contribution for a in involved for c in a.root_cause if c.feature == feature)
            entry["max_contribution"] = _x(contribution)
            sentences.append(
                f"Yes: {feature} is in the root cause of {_count_words(fetched)} "
                f"{_anomalies(len(involved))} in {where}, "
                f"the main cause in {len(as_top)}"
                f" (by module: {_module_breakdown(involved)}). Latest: {_line(involved[0])}; its largest "
                f"contribution was {_x(contribution)}× its usual error."
            )
        else:
            sentences.append(f"No: {feature} is not in the root cause of any anomaly in {where}.")
        if not entry["known_feature"]:
            sentences.append(f"{feature} is not a feature of any loaded model.")
        per_feature[feature] = entry
        cited.extend(a.id for a in involved)
        shown.extend(queries.most_severe_first(involved)[: ctx.shown])
    first = per_feature[ctx.slots.features[0]]
    facts: dict[str, Any] = {**first, **_range_facts(time_range), "features": per_feature}
    data = {"features": list(per_feature.values())}
    return Draft(
        text=" ".join(sentences), facts=facts, cited=list(dict.fromkeys(cited)), shown=shown, data=data
    )


def latest_anomaly(ctx: Context) -> Draft:
    feature = ctx.slots.feature
    page = ctx.repository.find(_query(ctx.slots, ctx.slots.time_range, feature))
    items = [a for a in page.items if not ctx.slots.modules or a.module in ctx.slots.modules]
    if not items:
        return _empty(ctx, f"{_severity_words(ctx.slots)}anomalies", ctx.slots.time_range)
    newest = items[0]
    text = (
        f"The latest {_severity_words(ctx.slots)}{ctx.slots.module.value + ' ' if ctx.slots.module else ''}"
        f"anomaly was at "
        f"{when(newest.window_end)}: {newest.module.value} ({newest.source}), severity "
        f"{newest.severity.value}, score {_g(newest.score)} "
        f"against threshold {_g(newest.threshold)}"
    )
    text += f", main root cause {newest.top_feature}." if newest.top_feature else "."
    facts = {
        "anomaly_id": newest.id,
        "module": newest.module.value,
        "source": newest.source,
        "time": newest.window_end.isoformat(),
        "severity": newest.severity.value,
        "score": _g(newest.score),
        "threshold": _g(newest.threshold),
        "top_feature": newest.top_feature,
    }
    return Draft(text=text, facts=facts, cited=[newest.id], shown=[newest])


CAPABILITIES = {
    Intent.LIST_ANOMALIES: "what went wrong in a module over a period",
    Intent.EXPLAIN_ANOMALY: "why a given anomaly was flagged (by time or id)",
    Intent.TOP_ROOT_CAUSE: "which sensor is most often the root cause",
    Intent.SUMMARY: "a summary across all modules",
    Intent.COMPARE_PERIODS: "how two periods compare (today and yesterday by default)",
    Intent.SENSOR_INVOLVEMENT: "whether a sensor is involved in any anomaly",
    Intent.LATEST_ANOMALY: "the latest anomaly",
}


def help_reply(ctx: Context, out_of_scope: bool) -> Draft:
    opener = (
        "I can only answer questions about the anomalies plantwatch has detected."
        if out_of_scope
        else "I answer questions about the anomalies plantwatch has detected."
    )
    examples = [INTENT_EXAMPLES[intent][0] for intent in CAPABILITIES]
    text = (
        f"{opener} Ask me about: "
        + "; ".join(CAPABILITIES.values())
        + ". Name a module (energy, machine, cyber), a period (last 24 h, today, yesterday, this week,"
        + " since Monday)"
        + " or a sensor. For example: "
        + " / ".join(f'"{e}"' for e in examples[:4])
        + "."
    )
    facts = {"capabilities": [i.value for i in CAPABILITIES], "modules": [m.value for m in Module]}
    return Draft(
        text=text, facts=facts, data={"examples": examples, "known_features": sorted(ctx.known_features)}
    )


HANDLERS: dict[Intent, Callable[[Context], Draft]] = {
    Intent.LIST_ANOMALIES: list_anomalies,
    Intent.EXPLAIN_ANOMALY: explain_anomaly,
    Intent.TOP_ROOT_CAUSE: top_root_cause,
    Intent.SUMMARY: summary,
    Intent.COMPARE_PERIODS: compare_periods,
    Intent.SENSOR_INVOLVEMENT: sensor_involvement,
    Intent.LATEST_ANOMALY: latest_anomaly,
    Intent.HELP: lambda ctx: help_reply(ctx, out_of_scope=False),
    Intent.UNKNOWN: lambda ctx: help_reply(ctx, out_of_scope=True),
}
