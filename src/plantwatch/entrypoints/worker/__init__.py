"""The MQTT worker: scores readings from the broker and stores anomalies."""
