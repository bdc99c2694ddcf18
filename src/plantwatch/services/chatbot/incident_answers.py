"""Answers about incidents (alarms, not scored windows): which are open, how many, who acknowledged one.

Figures come from the incident store (IncidentRepository.find and get), paged to the end so counts are exact;
the incidents cited are those the figures are about. Without an incident store the answer says so and gives
no figure.
"""

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from plantwatch.domain.incidents import Incident, IncidentAction, IncidentState
from plantwatch.domain.modules import Module
from plantwatch.domain.ports import IncidentQuery, IncidentRepository
from plantwatch.services.chatbot.answers import Answer, Store, when
from plantwatch.services.chatbot.facts import (
    AcknowledgerFacts,
    IncidentCountFacts,
    IncidentLine,
    NoIncidentStore,
    OpenIncidentsFacts,
)
from plantwatch.services.chatbot.intents import Intent
from plantwatch.services.chatbot.query import Query

# Open = not closed; of the annunciated states (the ones shown to operators) these are not closed.
OPEN_STATES = (
    IncidentState.ACTIVE_UNACKNOWLEDGED,
    IncidentState.ACTIVE_ACKNOWLEDGED,
    IncidentState.CLEARED_UNACKNOWLEDGED,
)
_PAGE = 500


def _modules(query: Query) -> tuple[Module | None, ...]:
    return tuple(query.modules) if query.modules else (None,)


def _incidents(
    repository: IncidentRepository, query: Query, state: IncidentState | None = None
) -> Iterator[Incident]:
    """Every incident in the query's modules, period and severities (annunciated ones, or of `state`)."""
    time_range = query.time_range
    for module in _modules(query):
        cursor: str | None = None
        while True:
            page = repository.find(
                IncidentQuery(
                    module=module,
                    state=state,
                    since=time_range.start if time_range else None,
                    until=time_range.end if time_range else None,
                    limit=_PAGE,
                    cursor=cursor,
                )
            )
            for incident in page.items:
                if not query.severities or incident.severity in query.severities:
                    yield incident
            cursor = page.next_cursor
            if cursor is None:
                break


def _newest_first(incidents: list[Incident]) -> list[Incident]:
    return sorted(incidents, key=lambda i: (i.start, i.id), reverse=True)


def _line(incident: Incident) -> IncidentLine:
    return IncidentLine(
        incident_id=incident.id,
        module=incident.module.value,
        source=incident.source,
        state=incident.state.value,
        severity=incident.severity.value,
        start=incident.start.isoformat(),
        end=incident.end.isoformat(),
        top_cause=incident.causes[0].feature if incident.causes else None,
    )


def _written(incident: Incident) -> str:
    cause = f", top cause {incident.causes[0].feature}" if incident.causes else ""
    return (
        f"{incident.module.value}/{incident.source} {incident.severity.value}, "
        f"{incident.state.value.replace('_', ' ')}, started {when(incident.start)}{cause} [{incident.id}]"
    )


def _period(query: Query) -> str:
    return query.time_range.label if query.time_range is not None else "in the whole store"


def _range_fields(query: Query) -> dict[str, Any]:
    time_range = query.time_range
    return {
        "period": _period(query),
        "since": time_range.start.isoformat() if time_range and time_range.start else None,
        "until": time_range.end.isoformat() if time_range and time_range.end else None,
    }


def _module_fact(query: Query) -> str:
    return query.module.value if query.module else "all"


def _no_store() -> Answer:
    return Answer(
        text="No incident store is wired to this chatbot, so I cannot say anything about incidents.",
        facts=NoIncidentStore(),
    )


def open_incidents(query: Query, store: Store) -> Answer:
    if store.incidents is None:
        return _no_store()
    found = _newest_first([i for state in OPEN_STATES for i in _incidents(store.incidents, query, state)])
    shown = found[: store.shown]
    facts = OpenIncidentsFacts(
        module=_module_fact(query),
        count=len(found),
        by_state=dict(Counter(i.state.value for i in found)),
        by_module=dict(Counter(i.module.value for i in found)),
        incidents=[_line(i) for i in shown],
        **_range_fields(query),
    )
    period = facts.period
    if not found:
        text = f"No open incident in {query.scope_words()} {period}."
    else:
        noun = "incident is" if len(found) == 1 else "incidents are"
        text = f"{len(found)} {noun} open in {query.scope_words()} {period}: " + "; ".join(
            _written(i) for i in shown
        )
        if len(found) > len(shown):
            text += f"; and {len(found) - len(shown)} more"
        text += "."
    return Answer(text=text, facts=facts, cited_incidents=[i.id for i in found])


def count_incidents(query: Query, store: Store) -> Answer:
    if store.incidents is None:
        return _no_store()
    found = _newest_first(list(_incidents(store.incidents, query)))
    by_state = Counter(i.state.value for i in found)
    facts = IncidentCountFacts(
        module=_module_fact(query),
        count=len(found),
        by_state=dict(by_state),
        by_module=dict(Counter(i.module.value for i in found)),
        by_severity=dict(Counter(i.severity.value for i in found)),
        **_range_fields(query),
    )
    noun = "incident" if len(found) == 1 else "incidents"
    text = f"{len(found)} {noun} in {query.scope_words()} {facts.period}"
    if found:
        text += " (" + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(by_state.items())) + ")"
    return Answer(text=text + ".", facts=facts, cited_incidents=[i.id for i in found])


def incident_acknowledger(query: Query, store: Store) -> Answer:
    if store.incidents is None:
        return _no_store()
    if query.severities:
        # the store filters by a lowest severity only; "low or critical" needs the whole scope
        newest = _newest_first(list(_incidents(store.incidents, query)))[:1]
    else:
        newest = [
            page.items[0]
            for module in _modules(query)
            if (page := store.incidents.find(_newest_query(query, module))).items
        ]
    if not newest:
        return Answer(
            text=f"There is no incident in {query.scope_words()} {_period(query)}.",
            facts=AcknowledgerFacts(module=_module_fact(query), incident=None, acknowledged=False),
        )
    incident = _newest_first(newest)[0]
    history = store.incidents.get(incident.id).history
    acknowledgements = [e for e in history if e.action is IncidentAction.ACKNOWLEDGE]
    described = f"The latest {query.scope_words()} incident ({_written(incident)})"
    if not acknowledgements:
        text = f"{described} has not been acknowledged by anyone."
        facts = AcknowledgerFacts(module=_module_fact(query), incident=_line(incident), acknowledged=False)
    else:
        entry = acknowledgements[-1]
        text = f"{described} was acknowledged by {entry.actor} at {when(entry.at)} UTC."
        facts = AcknowledgerFacts(
            module=_module_fact(query),
            incident=_line(incident),
            acknowledged=True,
            actor=entry.actor,
            acknowledged_at=entry.at.isoformat(),
        )
    return Answer(text=text, facts=facts, cited_incidents=[incident.id])


def _newest_query(query: Query, module: Module | None) -> IncidentQuery:
    time_range = query.time_range
    return IncidentQuery(
        module=module,
        since=time_range.start if time_range else None,
        until=time_range.end if time_range else None,
        limit=1,
    )


INCIDENT_HANDLERS: dict[Intent, Callable[[Query, Store], Answer]] = {
    Intent.OPEN_INCIDENTS: open_incidents,
    Intent.COUNT_INCIDENTS: count_incidents,
    Intent.INCIDENT_ACKNOWLEDGER: incident_acknowledger,
}
