"""The OpenAI-compatible rephraser: the request it sends, the reply it reads, failures that give None."""

import json

import httpx
import pytest

from plantwatch.adapters.chatbot.llm import OpenAICompatibleRephraser

FACTS = {"count": 3, "module": "energy"}


def rephraser_with(handler: httpx.MockTransport, api_key: str | None = "secret") -> OpenAICompatibleRephraser:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    client = httpx.Client(transport=handler, headers=headers, timeout=1.0)
    return OpenAICompatibleRephraser("http://llm.local/v1/", "tiny", api_key, client=client)


def test_sends_a_chat_completion_request_and_reads_the_first_choice() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"content": "  Energy had 3 anomalies. "}}]})

    text = rephraser_with(httpx.MockTransport(handle)).rephrase(
        "what went wrong?", "3 anomalies in energy.", FACTS
    )
    assert text == "Energy had 3 anomalies."
    request = seen[0]
    assert str(request.url) == "http://llm.local/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer secret"
    body = json.loads(request.content)
    assert body["model"] == "tiny"
    assert body["temperature"] == 0
    assert body["messages"][0]["role"] == "system"
    assert '"count": 3' in body["messages"][1]["content"]
    assert "3 anomalies in energy." in body["messages"][1]["content"]


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, text="boom"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"choices": []}),
        httpx.Response(200, json={"choices": [{"message": {"content": "   "}}]}),
        httpx.Response(200, json={"choices": [{"message": {"content": None}}]}),
    ],
)
def test_a_bad_reply_gives_none(response: httpx.Response) -> None:
    rephraser = rephraser_with(httpx.MockTransport(lambda request: response))
    assert rephraser.rephrase("q", "a", FACTS) is None


def test_an_unreachable_server_gives_none() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert rephraser_with(httpx.MockTransport(refuse), api_key=None).rephrase("q", "a", FACTS) is None
