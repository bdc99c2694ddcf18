"""Chatbot adapters: the embedding intent classifier, the optional LLM rephraser."""
