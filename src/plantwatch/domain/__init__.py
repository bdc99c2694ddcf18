"""Entities, pure logic and ports. Imports nothing from services, adapters or entrypoints."""
