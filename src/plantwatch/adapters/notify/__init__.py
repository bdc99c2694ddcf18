"""Notifiers of incident events: webhooks over HTTP and an MQTT topic."""

from plantwatch.adapters.notify.mqtt import IncidentTopicNotifier, incidents_topic
from plantwatch.adapters.notify.webhook import WebhookNotifier

__all__ = ["IncidentTopicNotifier", "WebhookNotifier", "incidents_topic"]
