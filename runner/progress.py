"""What a run reports as it goes, and how a person sees it.

The engine calls the ``Progress`` hooks and knows nothing of terminals; the CLI
and ``make demo`` draw a run with ``ConsoleProgress``, tests record the calls.
``ConsoleProgress`` writes one line per step (name, status, duration, output or
error): on a terminal a live line while the step runs, with ``show_logs`` every
log line as it comes, and otherwise the log's last lines when a step fails.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import TextIO

from common.logs import masker
from runner.formatting import format_duration
from runner.runs import FAILED, SUCCEEDED, RunRecord, StepRecord

FAILED_LOG_LINES = 30
_TICK_INTERVAL = 0.25
_SPINNER = "|/-\\"


class Progress:
    """What a run reports as it goes; the CLI draws it, tests record it. Every hook is optional."""

    def run_started(self, run: RunRecord) -> None:
        pass

    def step_started(self, run: RunRecord, step: StepRecord) -> None:
        pass

    def step_log(self, run: RunRecord, step: StepRecord, line: str) -> None:
        pass

    def step_finished(self, run: RunRecord, step: StepRecord) -> None:
        pass

    def run_finished(self, run: RunRecord) -> None:
        pass


class ConsoleProgress(Progress):
    """Progress for a person: a line per step, live on a terminal, the log tail on failure."""

    def __init__(self, out: TextIO, show_logs: bool = False, live: bool | None = None) -> None:
        self.out = out
        self.show_logs = show_logs
        self.live = out.isatty() if live is None else live
        self._lock = threading.Lock()
        self._tail: deque[str] = deque(maxlen=FAILED_LOG_LINES)
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._width = max(len("STEP"), 8)

    def run_started(self, run: RunRecord) -> None:
        self._width = max([len(s.name) for s in run.steps] + [8])
        self._print(f"run {run.name}: workflow {run.workflow}, executor {run.executor}, codeset {run.codeset}")

    def step_started(self, run: RunRecord, step: StepRecord) -> None:
        self._tail.clear()
        if self.live and not self.show_logs:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, args=(step,), daemon=True)
            self._ticker.start()
        else:
            self._print(f"  {step.name:<{self._width}}  Running")

    def step_log(self, run: RunRecord, step: StepRecord, line: str) -> None:
        self._tail.append(line)
        if self.show_logs:
            self._print(f"  {step.name:<{self._width}} | {line}")

    def step_finished(self, run: RunRecord, step: StepRecord) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None
        detail = step.output if step.status == SUCCEEDED else step.error or ""
        self._print(
            f"  {step.name:<{self._width}}  {step.status:<9} {format_duration(step.duration or 0):>7}  {detail}"
        )
        if step.status == FAILED and not self.show_logs and self._tail:
            self._print(f"  --- last {len(self._tail)} lines of {step.log_path} ---")
            for line in self._tail:
                self._print(f"  | {line}")

    def run_finished(self, run: RunRecord) -> None:
        summary = f"run {run.name} {run.status.lower()} in {format_duration(run.duration)}"
        if run.error and run.status != SUCCEEDED:
            summary += f": {run.error}"
        self._print(summary)
        if run.status != SUCCEEDED:
            self._print(f"logs: fuseml-steps logs {run.name} [STEP]")

    def _tick(self, step: StepRecord) -> None:
        count = 0
        while not self._stop.wait(_TICK_INTERVAL):
            last = self._tail[-1] if self._tail else ""
            elapsed = format_duration(time.time() - (step.started or time.time()))
            text = f"  {step.name:<{self._width}}  Running {_SPINNER[count % len(_SPINNER)]} {elapsed:>7}  {last}"
            with self._lock:
                self.out.write("\r" + _fit(text) + "\x1b[K")
                self.out.flush()
            count += 1
        with self._lock:
            self.out.write("\r\x1b[K")
            self.out.flush()

    def _print(self, text: str) -> None:
        with self._lock:
            self.out.write(masker().mask(text) + "\n")
            self.out.flush()


def _fit(text: str) -> str:
    """``text`` cut to the terminal's width, so the live line redraws in place instead of wrapping."""
    try:
        columns = os.get_terminal_size().columns
    except OSError:
        columns = 120
    return text if len(text) < columns else text[: columns - 2] + "…"
