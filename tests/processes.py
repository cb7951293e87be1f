"""Processes the real-process tests start and kill (standard library only: client processes import it too)."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def kill_group(popen: subprocess.Popen) -> None:
    """SIGKILL a process started with start_new_session=True and all its children, then reap it."""
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


class ManagedProcess:
    """One command in its own process group, its output in a log file; SIGKILLed as a group."""

    def __init__(self, name: str, command: list[str], *, env: dict, cwd: Path, log_path: Path):
        self.name = name
        self.log_path = log_path
        self._log_file = open(log_path, "ab")
        self.popen = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return f"--- {self.name} (pid {self.pid}) log tail ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and pool children), then reap it.

        Only idle or deliberately doomed processes are stopped, so no warm shutdown is needed;
        it would cost seconds per process on the polling filesystem transport.
        """
        kill_group(self.popen)
        if not self._log_file.closed:
            self._log_file.close()
