"""Fixtures for tests against real services. Each skips cleanly when its service is not running."""

import os
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

# Override to point the integration tests at another server; the default is the team's local PostgreSQL.
POSTGRES_URL = os.environ.get(
    "PLANTWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _connect(**options: Any) -> psycopg.Connection:
    url = make_url(POSTGRES_URL)
    return psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        dbname=url.database,
        user=url.username,
        password=url.password,
        **options,
    )


@cache
def _postgres_unreachable_reason() -> str | None:
    try:
        with _connect(connect_timeout=3):
            return None
    except psycopg.Error as error:
        where = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        return f"PostgreSQL at {where} is not reachable: {error}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL to the test database whose connections use a schema of their own.

    Each test gets a fresh, empty schema (its search_path), dropped afterwards, so tests and parallel runs
    never see each other's rows.
    """
    reason = _postgres_unreachable_reason()
    if reason is not None:
        pytest.skip(reason)
    schema = f"plantwatch_test_{uuid.uuid4().hex[:12]}"
    with _connect(autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with _connect(autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
