"""Optional rewording of grounded answers by an OpenAI-compatible chat endpoint (a local server, typically).

The service keeps the reworded text only when every number in it is in the grounded facts; any failure here
(unreachable, timeout, malformed reply) gives None and the template answer stands.
"""

import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You reword answers about industrial anomalies for plant operators. Rewrite the given answer as clear, "
    "brief prose. Use only the facts given: do not add, change or compute any number, time, name or id. "
    "Reply with the reworded answer only."
)


class OpenAICompatibleRephraser:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(timeout=timeout_s, headers=headers)

    def rephrase(self, question: str, answer: str, facts: Mapping[str, Any]) -> str | None:
        prompt = (
            f"Question: {question}\n\nAnswer to reword: {answer}\n\n"
            f"Facts (JSON): {json.dumps(facts, default=str)}"
        )
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
        }
        try:
            response = self.client.post(self.url, json=body)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
            log.warning("LLM rephrasing at %s failed, keeping the template answer: %s", self.url, error)
            return None
        return content.strip() if isinstance(content, str) and content.strip() else None

    def close(self) -> None:
        self.client.close()
