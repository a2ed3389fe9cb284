"""The README's Quickstart runs as written: its tasks module, its worker command and its
producer code, in a fresh project folder on a fresh SQLite file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from .cli.conftest import ROOT

BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def quickstart() -> list[tuple[str, str]]:
    """The Quickstart's fenced blocks, in order, as (language, code)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return BLOCK.findall(section)


def test_the_readme_keeps_two_commands_on_its_first_screen() -> None:
    first_screen = (ROOT / "README.md").read_text().split("\n---\n", 1)[0]
    (commands,) = [code for lang, code in BLOCK.findall(first_screen) if lang == "bash"]
    assert [line.split()[0] for line in commands.splitlines()] == ["scripts/demo", "scripts/test"]


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    blocks = quickstart()
    install, tasks, workers, producer = (code for _, code in blocks)
    assert [lang for lang, _ in blocks] == ["bash", "python", "bash", "python"]
    assert all(line.startswith("pip ") for line in install.splitlines())
    # Every install line brings the extras the Quickstart's own commands need: `up` serves
    # the API and dashboard (the web extra), and said so only once run.
    extras = [set(m.split(",")) for m in re.findall(r"\[([\w,]+)\]'", install)]
    assert len(extras) == 2
    if re.search(r"^conveyor -A \S+ (up|serve)\b", workers, re.MULTILINE):
        assert all("web" in e for e in extras), install
    # max_retries beside autoretry_for: retries happen only for those exceptions (or
    # self.retry()), as in Celery; max_retries alone invites the belief that any is retried.
    assert all("autoretry_for=" in line for line in tasks.splitlines() if "max_retries=" in line)
    # The user's own environment has the `conveyor` command, not the clone's .venv/bin.
    assert all(line.startswith("conveyor -A ") for line in workers.splitlines())
    assert tasks.startswith("# myproject/tasks.py\n")
    (tmp_path / "myproject").mkdir()
    (tmp_path / "myproject" / "tasks.py").write_text(tasks)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["CONVEYOR_BACKEND"] = f"sqlite:///{tmp_path / 'conveyor.db'}"
    # This environment's `conveyor` (its bin folder first on PATH), as a user's would be.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = workers.splitlines()[0].split("#")[0]
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=tmp_path, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        done = subprocess.run([sys.executable, "-c", producer], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    log_text = (tmp_path / "worker.log").read_text()
    assert done.returncode == 0, f"{done.stderr}\nworker log:\n{log_text}"
    assert done.stdout.splitlines()[-1] == "/in.webm"
    assert "SUCCESS myproject.tasks.convert" in log_text
