"""Adapters: what the code calls out to (store, registry, detectors, data sets, broker, chatbot models)."""
