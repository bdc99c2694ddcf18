"""POST /chatbot/query: questions about the stored anomalies, answered from the anomaly store.

The chatbot service lives on app.state.chatbot. This router's lifespan builds it when the app starts (keyword
rules at once, the embedding model loading in a background thread), so no request waits for a model.
"""

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field, field_validator

from plantwatch.bootstrap import Container, build_chatbot_service
from plantwatch.domain.modules import Module
from plantwatch.entrypoints.api.dependencies import ContainerDep
from plantwatch.entrypoints.api.schemas import AnomalyOut
from plantwatch.services.chatbot import ChatbotService, Intent
from plantwatch.services.chatbot.service import MAX_QUESTION_CHARS

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


router = APIRouter(tags=["chatbot"], lifespan=chatbot_lifespan)


def get_chatbot(request: Request, container: ContainerDep) -> ChatbotService:
    service: ChatbotService | None = getattr(request.app.state, "chatbot", None)
    return service if service is not None else _install(request.app, container)


ChatbotDep = Annotated[ChatbotService, Depends(get_chatbot)]


class ChatQuery(BaseModel):
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="A question about the anomalies, in plain English.",
        examples=["what went wrong in energy in the last 24 h"],
    )
    conversation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="From a previous answer, so follow-up questions ('and yesterday?') keep its context.",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, question: str) -> str:
        if not question.strip():
            raise ValueError("question is empty")
        return question.strip()


class ChatAnswer(BaseModel):
    conversation_id: str = Field(description="Send it back with the next question of the same conversation.")
    intent: Intent = Field(description="What the question was understood to ask.")
    confidence: float = Field(description="How sure the intent match was, 0 to 1.")
    answer: str = Field(description="The answer; every figure in it comes from the anomaly store.")
    facts: dict[str, Any] = Field(description="The grounded figures the answer states, by name.")
    cited_anomaly_ids: list[str] = Field(description="Every anomaly the figures were computed from.")
    anomalies: list[AnomalyOut] = Field(description="The anomalies the answer shows, most relevant first.")
    data: dict[str, Any] = Field(
        description="Structured data to draw: counts per module and severity, top features, a timeline."
    )
    rephrased: bool = Field(description="Whether the configured LLM reworded the template answer.")


@router.post("/chatbot/query", response_model=ChatAnswer, summary="Ask a question about the anomalies")
def query_chatbot(query: ChatQuery, chatbot: ChatbotDep, container: ContainerDep) -> ChatAnswer:
    reply = chatbot.answer(container.repository, query.question, query.conversation_id)
    return ChatAnswer(
        conversation_id=reply.conversation_id,
        intent=reply.intent,
        confidence=reply.confidence,
        answer=reply.answer,
        facts=reply.facts,
        cited_anomaly_ids=reply.cited_anomaly_ids,
        anomalies=[AnomalyOut.from_domain(a) for a in reply.anomalies],
        data=reply.data,
        rephrased=reply.rephrased,
    )
