"""One masking stream for everything a process and its children write.

Masking log records is not enough: MLflow writes ``View run … at: <tracking
URL>`` with ``sys.stdout.write``, ``warnings`` print their own lines, and child
processes inherit file descriptors 1 and 2, not our Python objects. So the
step's descriptors 1 and 2 become pipes, and a thread per pipe masks what comes
through, line by line, before it reaches the real terminal or file. Whatever
writes there (print, logging, warnings, C code, a ``pip`` or ``bash`` child) is
masked the same way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

from common.logs import SecretMasker

_CHUNK = 65536
_MAX_PENDING = 1 << 20  # a "line" longer than this is masked and written as it is
_DRAIN_SECONDS = 2.0  # after we are done, how long children that kept our stdout may still write


def _masked(masker: SecretMasker, data: bytes) -> bytes:
    text = data.decode("utf-8", errors="surrogateescape")
    return masker.mask(text).encode("utf-8", errors="surrogateescape")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            return
        view = view[written:]


class _Pump(threading.Thread):
    """Copies ``source`` to ``target``, masking whole lines (``\\n`` or ``\\r`` ended)."""

    def __init__(self, source: int, target: int, masker: SecretMasker) -> None:
        super().__init__(name=f"masked-output-{target}", daemon=True)
        self.source, self.target, self.masker = source, target, masker

    def run(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.source, _CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            cut = max(pending.rfind(b"\n"), pending.rfind(b"\r"))
            if cut >= 0 or len(pending) > _MAX_PENDING:
                end = cut + 1 if cut >= 0 else len(pending)
                _write_all(self.target, _masked(self.masker, pending[:end]))
                pending = pending[end:]
        if pending:
            _write_all(self.target, _masked(self.masker, pending))
        os.close(self.source)


@contextlib.contextmanager
def masked_output(masker: SecretMasker, fds: tuple[int, ...] = (1, 2)) -> Iterator[None]:
    """Route ``fds`` through ``masker`` for the duration; the original descriptors are restored after."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved: list[tuple[int, int, _Pump]] = []
    try:
        for fd in fds:
            original = os.dup(fd)
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            pump = _Pump(read_end, original, masker)
            pump.start()
            saved.append((fd, original, pump))
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, original, _pump in saved:
            os.dup2(original, fd)  # closes our write end: the pump sees EOF once children let go too
        for _fd, original, pump in saved:
            pump.join(_DRAIN_SECONDS)
            if not pump.is_alive():
                os.close(original)
