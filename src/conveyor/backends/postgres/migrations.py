"""The PostgreSQL schema: created and upgraded by the numbered scripts in
``backends/sql/postgres/``, under an advisory lock so two processes never migrate at
once; the versions applied are kept in the schema's ``migrations`` table."""

from __future__ import annotations

from typing import Any

from ...errors import ConfigurationError
from ..sqlfiles import migrations
from .driver import psycopg, sql


def migrate_or_check(conn: psycopg.Connection[Any], schema: str, auto_migrate: bool) -> None:
    """Bring the schema up to date, or (``auto_migrate`` off) fail if it is not."""
    current = version(conn, schema)
    latest = migrations("postgres")[-1][0]
    if current < latest:
        if not auto_migrate:
            raise ConfigurationError(
                f"the schema {schema!r} is at version {current}, this Conveyor needs {latest}: "
                "run `conveyor migrate` (automatic migration is off: ?migrate=false)"
            )
        apply(conn, schema)


def version(conn: psycopg.Connection[Any], schema: str) -> int:
    row = conn.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'migrations'",
        (schema,),
    ).fetchone()
    if row is None:
        return 0
    found = conn.execute(
        sql.SQL("SELECT max(version) FROM {}.migrations").format(sql.Identifier(schema))
    ).fetchone()
    return int(found[0] or 0) if found else 0


def stores(conn: psycopg.Connection[Any]) -> list[str]:
    """The schemas of this database that hold a Conveyor store (its migrations and jobs)."""
    rows = conn.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name IN "
        "('migrations', 'jobs') GROUP BY table_schema HAVING count(*) = 2 ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


def apply(conn: psycopg.Connection[Any], schema_name: str) -> list[int]:
    """Apply pending migrations (under an advisory lock); returns the versions applied."""
    schema = sql.Identifier(schema_name)
    applied = []
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"conveyor-migrate:{schema_name}",)
        )
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.migrations (version INTEGER PRIMARY KEY, "
                             "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())").format(schema))  # fmt: skip
        current = version(conn, schema_name)
        for number, script in migrations("postgres"):
            if number > current:
                conn.execute(script.replace("{schema}", schema.as_string(conn)).encode())
                conn.execute(
                    sql.SQL("INSERT INTO {}.migrations (version) VALUES (%s)").format(schema),
                    (number,),
                )
                applied.append(number)
    return applied
