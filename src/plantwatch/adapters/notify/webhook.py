"""POST an incident event's JSON to a webhook URL; anything but a 2xx answer is a failed attempt."""

import httpx

from plantwatch.domain.ports import Notification

EVENT_ID_HEADER = "X-Plantwatch-Event-Id"


class WebhookNotifier:
    def __init__(self, timeout_s: float = 5.0, client: httpx.Client | None = None) -> None:
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)

    def send(self, notification: Notification) -> None:
        response = self._client.post(
            notification.target,
            content=notification.payload.encode(),
            headers={"Content-Type": "application/json", EVENT_ID_HEADER: notification.event_id},
        )
        response.raise_for_status()

    def close(self) -> None:
        self._client.close()
