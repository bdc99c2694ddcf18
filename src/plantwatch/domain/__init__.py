"""Entities, pure logic and ports. Imports nothing from services or infrastructure."""
