"""Entry points: what the world calls in through (HTTP API, command line, MQTT worker)."""
