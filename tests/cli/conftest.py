from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_env(url: str, columns: int = 200) -> dict[str, str]:
    """The environment of a CLI run on ``url`` with tests.apps.basic's app."""
    return {
        **os.environ,
        "CONVEYOR_BACKEND": url,
        "CONVEYOR_APP": "tests.apps.basic:app",
        "COLUMNS": str(columns),
    }


def run_cli(
    env: dict[str, str], *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m conveyor ARGS``, stdout and stderr captured (so stdout is a pipe)."""
    return subprocess.run([sys.executable, "-m", "conveyor", *args], cwd=ROOT, env=env, input=input,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
