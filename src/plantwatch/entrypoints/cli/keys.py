"""`plantwatch api-key`: a new random API key and the digest under which the server is told about it."""

import json
import secrets
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from plantwatch.domain.access import Role, hash_api_key
from plantwatch.settings import ApiKeyGrant

console = Console()


def api_key(
    role: Annotated[Role, typer.Option(help="viewer, operator or admin.")] = Role.VIEWER,
    name: Annotated[
        str | None,
        typer.Option(help="Who holds the key: incident actions made with it are recorded under this name."),
    ] = None,
) -> None:
    """Print a new key (give it to the client; it is shown once) and its settings entry (for the server)."""
    key = secrets.token_urlsafe(32)
    digest = hash_api_key(key)
    entry: Role | ApiKeyGrant = role
    if name is not None:
        try:
            entry = ApiKeyGrant(role=role, name=name)
        except ValidationError as error:
            raise typer.BadParameter(error.errors()[0]["msg"], param_hint="--name") from None
    console.print(f"key (for the client's X-API-Key header): {key}", soft_wrap=True, highlight=False)
    console.print("server setting, merged with the other keys' entries:")
    console.print(
        f"PLANTWATCH_API_KEYS='{json.dumps({digest: _entry_json(entry)})}'", soft_wrap=True, highlight=False
    )


def _entry_json(entry: Role | ApiKeyGrant) -> str | dict[str, str]:
    return entry.value if isinstance(entry, Role) else entry.model_dump(mode="json")
