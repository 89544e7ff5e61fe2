"""Following a step's log file as it grows, so progress can show each line while the step runs.

The executors write a step's output to its log file (the record a user reads
later with ``fuseml-steps logs``); reading that file back, rather than a pipe,
works the same for a process and a container.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

_POLL_INTERVAL = 0.1


class LogTail:
    """Follows a growing log file in a thread and hands each complete line to ``emit``.

    Only what is written after the tail is made is followed; ``stop`` reads to the
    end once more and hands over a last line that has no newline.
    """

    def __init__(self, path: Path, emit: Callable[[str], None]) -> None:
        self.path = path
        self.emit = emit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offset = path.stat().st_size if path.exists() else 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name=f"tail-{self.path.stem}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _follow(self) -> None:
        pending = b""
        while True:
            stopping = self._stop.is_set()
            try:
                with open(self.path, "rb") as f:
                    f.seek(self._offset)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            self._offset += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.emit(line.decode("utf-8", "replace").rstrip("\r"))
            if stopping:
                if pending:
                    self.emit(pending.decode("utf-8", "replace"))
                return
            self._stop.wait(_POLL_INTERVAL)
