"""The SQLite schema: created and upgraded by the numbered scripts in
``backends/sql/sqlite/``, in one ``BEGIN IMMEDIATE`` transaction (one migrator at a time,
across processes); the version applied is the file's ``user_version``."""

from __future__ import annotations

import sqlite3

from ..sqlfiles import migrations


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this file has not had yet (on a connection that defines
    ``conveyor_bucket``: ``SQLiteConnection._conn``)."""
    conn.execute("BEGIN IMMEDIATE")  # one migrator at a time, across processes
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in migrations("sqlite"):
            if number > current:
                for statement in split_script(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def split_script(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
