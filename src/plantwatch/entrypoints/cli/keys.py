"""`plantwatch api-key`: a new random API key and the digest under which the server is told about it."""

import json
import secrets
from typing import Annotated

import typer
from rich.console import Console

from plantwatch.domain.access import Role, hash_api_key

console = Console()


def api_key(
    role: Annotated[Role, typer.Option(help="viewer, operator or admin.")] = Role.VIEWER,
) -> None:
    """Print a new key (give it to the client; it is shown once) and its settings entry (for the server)."""
    key = secrets.token_urlsafe(32)
    digest = hash_api_key(key)
    console.print(f"key (for the client's X-API-Key header): {key}", soft_wrap=True, highlight=False)
    console.print("server setting, merged with the other keys' entries:")
    console.print(
        f"PLANTWATCH_API_KEYS='{json.dumps({digest: role.value})}'", soft_wrap=True, highlight=False
    )
