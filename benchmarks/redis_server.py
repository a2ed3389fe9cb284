"""A redis-server of a benchmark's own, on a free port: the soak kills and restarts one
(persistent: AOF with fsync always), the peer comparison flushes one between contenders
(not persistent, like the machine's) without touching anybody's data."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, folder: Path, *, persistent: bool) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        keep = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if persistent
            else ["--appendonly", "no"]
        )
        self.argv = [binary, "--bind", "127.0.0.1", "--dir", str(folder), "--save", "", *keep]
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([*self.argv, "--port", str(self.port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc
            time.sleep(0.02)
        proc.kill()
        raise SystemExit(f"redis-server did not start on port {self.port}")

    def restart(self) -> None:
        """SIGKILL it and start it again on the same port and data folder."""
        self.stop()
        time.sleep(0.3)  # an outage the clients notice
        self.proc = self._start()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
