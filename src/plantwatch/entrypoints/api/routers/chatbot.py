"""POST /chatbot/query: questions about the stored anomalies and incidents, answered from their stores.

The chatbot service lives on app.state.chatbot. This router's lifespan builds it when the app starts (keyword
rules at once, the embedding model loading in a background thread), so no request waits for a model.
"""

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from plantwatch.bootstrap import Container, build_chatbot_service
from plantwatch.domain.access import Role
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.access import role_dependency
from plantwatch.entrypoints.api.dependencies import ContainerDep
from plantwatch.entrypoints.api.schemas import AnomalyOut, ChatAnswer, ChatQuery
from plantwatch.services.chatbot import ChatbotService

_build_lock = threading.Lock()


def _feature_names(container: Container) -> dict[Module, list[str]]:
    return {module: list(model.card.feature_names) for module, model in container.models.items()}


def _install(app: FastAPI, container: Container) -> ChatbotService:
    with _build_lock:
        service: ChatbotService | None = getattr(app.state, "chatbot", None)
        if service is None:
            service = build_chatbot_service(container.settings, _feature_names(container))
            app.state.chatbot = service
        return service


@asynccontextmanager
async def chatbot_lifespan(app: FastAPI) -> AsyncIterator[None]:
    container: Container | None = getattr(app.state, "container", None)
    if container is not None:
        _install(app, container)
    yield


router = APIRouter(tags=["chatbot"], lifespan=chatbot_lifespan, dependencies=[role_dependency(Role.VIEWER)])


async def get_chatbot(request: Request, container: ContainerDep) -> ChatbotService:
    service: ChatbotService | None = getattr(request.app.state, "chatbot", None)
    if service is not None:
        return service
    # an app built without the router's lifespan (tests of routers alone) builds it on first use, off the loop
    return await run_in_threadpool(_install, request.app, container)


ChatbotDep = Annotated[ChatbotService, Depends(get_chatbot)]


@router.post("/chatbot/query", response_model=ChatAnswer, summary="Ask a question about the anomalies")
def query_chatbot(query: ChatQuery, chatbot: ChatbotDep, container: ContainerDep) -> ChatAnswer:
    incidents = container.incidents.repository if container.incidents is not None else None
    reply = chatbot.answer(container.repository, query.question, query.conversation_id, incidents)
    return ChatAnswer(
        conversation_id=reply.conversation_id,
        intent=reply.intent,
        confidence=reply.confidence,
        answer=reply.answer,
        facts=reply.facts,
        cited_anomaly_ids=reply.cited_anomaly_ids,
        cited_incident_ids=reply.cited_incident_ids,
        anomalies=[AnomalyOut.from_domain(a) for a in reply.anomalies],
        data=reply.data,
        rephrased=reply.rephrased,
        interpretation=reply.interpretation,
        query=reply.query,
    )
