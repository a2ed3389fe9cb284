"""What checking a call's arguments costs: ``Task.check_args`` on a task whose parameters
are annotated with scalar types (``add``) and on one without annotations (``plain``), as
``enqueue_many`` checks every job of a batch. Count instructions, which load does not
move: the script making N calls minus the same making none.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m benchmarks.check_args add 20000
"""

from __future__ import annotations

import sys

from conveyor import App

app = App("bench", backend="memory://")


@app.task(name="add")
def add(a: int, b: int) -> int:
    return a + b


@app.task(name="plain")
def plain(a, b):  # type: ignore[no-untyped-def]
    return a + b


def main(task: str, calls: int) -> None:
    check = app.tasks[task].check_args
    for i in range(calls):
        check((i, i), {})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
