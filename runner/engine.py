"""Running a workflow: bind the inputs, stage the codesets, run each step in order, record it all.

What a step sees is the contract's (docs/contract.md): ``FUSEML_<INPUT>`` for each
value input, ``TASK_RESULT`` naming its first output, ``FUSEML_RESULTS_DIR``
(a per-step folder), ``FUSEML_ENV_WORKFLOW_NAME``/``_NAMESPACE``, its
extensions' variables, and the codeset as working directory. Its output is the
content of the result file, which later steps get through
``{{ steps.<step>.outputs.<name> }}``.

The working directory is a copy of the codeset made for the run (see
runner/staging.py): deleted when the run succeeds, kept for inspection when it
fails. Each step's log goes to its file and, line by line, to the run's
``Progress`` (runner/progress.py).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from common import names
from common.errors import StepError
from common.logs import masker
from runner.config import Config
from runner.executors import Executor, StepSpec, get_executor, image_role
from runner.extensions import ExtensionSetup, step_extensions
from runner.logtail import LogTail
from runner.progress import Progress
from runner.runs import CANCELLED, FAILED, RUNNING, SKIPPED, SUCCEEDED, RunRecord, RunStore, StepRecord
from runner.staging import Codeset, codesets_by_input, stage_codeset
from runner.templates import Reference, RefKind, is_template, references, render
from runner.workflow import DEFAULT_CODESET_PATH, Step, Workflow, WorkflowError, bind_inputs

log = logging.getLogger(__name__)

RUNS_DIR = "runs"
_JOIN_INTERVAL = 0.2


def run_workflow(
    workflow: Workflow,
    codeset: Codeset | Mapping[str, Codeset] | None,
    inputs: Mapping[str, str],
    executor: Executor | str,
    config: Config,
    state_dir: Path,
    progress: Progress | None = None,
    *,
    verbose_steps: bool = False,
    keep_codeset: bool = False,
    cancel: threading.Event | None = None,
) -> RunRecord:
    """Run ``workflow`` and return its record (status, step outputs, workflow outputs).

    Raises WorkflowError before anything runs when the inputs or extensions do
    not fit; a step that fails makes a Failed record, not an exception.
    """
    state_dir = Path(state_dir).resolve()
    executor = get_executor(executor) if isinstance(executor, str) else executor
    progress = progress or Progress()
    cancel = cancel or threading.Event()
    for secret in config.secrets():
        masker().add(secret)
    codesets = codesets_by_input(workflow, codeset)
    values = bind_inputs(workflow, inputs, {name: c.name for name, c in codesets.items()})
    extensions = {
        s.name: step_extensions(s, config, state_dir, executor.default_predictor_target) for s in workflow.steps
    }
    store = RunStore(state_dir)
    shown = ", ".join(f"{n}={c.path}" for n, c in codesets.items())
    run = store.create(workflow.name, executor.name, shown, values, state_dir / RUNS_DIR)
    run.steps = [
        StepRecord(s.name, i, s.image, run.run_dir / "logs" / f"{s.name}.log") for i, s in enumerate(workflow.steps)
    ]
    store.save(run)
    progress.run_started(run)
    runner = _Run(workflow, run, store, executor, config, values, extensions, progress, verbose_steps, cancel)
    completed = False
    try:
        staged = {
            name: stage_codeset(c, run.run_dir / "codesets" / name, skip=(state_dir,)) for name, c in codesets.items()
        }
        runner.codesets = {name: (codesets[name], path) for name, path in staged.items()}
        runner.run_steps()
        completed = True
    except KeyboardInterrupt:
        run.status, run.error = CANCELLED, "interrupted"
    except StepError as e:
        run.status, run.error = FAILED, masker().mask(str(e))
    finally:
        for step in run.steps:
            if step.status not in (SUCCEEDED, FAILED, CANCELLED):
                step.status = SKIPPED
        if run.status == RUNNING and completed:
            run.status = SUCCEEDED
            run.outputs = runner.workflow_outputs()
        elif run.status == RUNNING:  # a bug in the runner: its traceback follows
            run.status, run.error = FAILED, "internal error in the runner"
        run.finished = time.time()
        store.save(run)
        if run.status == SUCCEEDED and not keep_codeset:
            shutil.rmtree(run.run_dir / "codesets", ignore_errors=True)
        progress.run_finished(run)
    return run


class _Run:
    """The state of one run while its steps execute."""

    def __init__(
        self,
        workflow: Workflow,
        run: RunRecord,
        store: RunStore,
        executor: Executor,
        config: Config,
        values: dict[str, str],
        extensions: dict[str, ExtensionSetup],
        progress: Progress,
        verbose_steps: bool,
        cancel: threading.Event,
    ) -> None:
        self.workflow = workflow
        self.run = run
        self.store = store
        self.executor = executor
        self.config = config
        self.values = values
        self.extensions = extensions
        self.progress = progress
        self.verbose_steps = verbose_steps
        self.cancel = cancel
        self.codesets: dict[str, tuple[Codeset, Path]] = {}
        self.outputs: dict[str, dict[str, str]] = {}

    def run_steps(self) -> None:
        for step, record in zip(self.workflow.steps, self.run.steps, strict=True):
            self.run_step(step, record)
            if record.status != SUCCEEDED:
                self.run.status = record.status
                self.run.error = f"step '{step.name}' {record.status.lower()}: {record.error}"
                return

    def run_step(self, step: Step, record: StepRecord) -> None:
        record.status, record.started = RUNNING, time.time()
        self.store.save(self.run)
        self.progress.step_started(self.run, record)
        tail = LogTail(record.log_path, lambda line: self.progress.step_log(self.run, record, masker().mask(line)))
        try:
            spec = self.spec(step, record)
            record.image = spec.image
            self.executor.check(spec)
            tail.start()
            record.exit_code = self.execute(spec)
            tail.stop()
            if self.cancel.is_set():
                record.status, record.error = CANCELLED, f"stopped by cancelling the run (exit code {record.exit_code})"
            elif record.exit_code != 0:
                record.status = FAILED
                record.error = f"exit code {record.exit_code}; log: {record.log_path}"
            else:
                self.outputs[step.name] = self.read_outputs(step, spec.results_dir)
                record.output = self.outputs[step.name].get(step.result_name or "", None)
                record.status = SUCCEEDED
        except StepError as e:
            record.status, record.error = FAILED, masker().mask(str(e))
        finally:
            tail.stop()
            record.finished = time.time()
            self.store.save(self.run)
            self.progress.step_finished(self.run, record)

    def execute(self, spec: StepSpec) -> int:
        """Run the step in a thread, so Ctrl-C (or SIGTERM) here cancels it (the step has its own session).

        The thread's end is awaited on an Event, not ``Thread.join``: on Python 3.11 a join that
        Ctrl-C interrupts can mark the thread stopped while it still runs, and the run would be
        recorded Cancelled while its step went on. After a cancel we wait for the executor to
        have stopped the step (its grace period, then SIGKILL), however many interrupts follow.
        """
        outcome: dict[str, int | BaseException] = {}
        done = threading.Event()

        def target() -> None:
            try:
                outcome["code"] = self.executor.run(spec, self.cancel)
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                outcome["error"] = e
            finally:
                done.set()

        worker = threading.Thread(target=target, name=f"step-{spec.step}", daemon=True)
        worker.start()
        while not done.is_set():
            try:
                done.wait(_JOIN_INTERVAL)
            except KeyboardInterrupt:
                if not self.cancel.is_set():
                    log.warning("cancelling: stopping step %s", spec.step)
                self.cancel.set()
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return int(outcome.get("code", 1))  # type: ignore[arg-type]

    def spec(self, step: Step, record: StepRecord) -> StepSpec:
        image = self.render(step.image, step)
        role = image_role(image)
        results_dir = self.run.run_dir / "results" / step.name
        results_dir.mkdir(parents=True, exist_ok=True)
        mount = step.codeset
        if mount is not None:
            codeset_name = references(mount.name)[0].name
            workdir = self.codesets[codeset_name][1]
            codeset_path = mount.path
        else:
            workdir = self.run.run_dir / "work" / step.name
            workdir.mkdir(parents=True, exist_ok=True)
            codeset_path = DEFAULT_CODESET_PATH
        extension = self.extensions[step.name]
        return StepSpec(
            run=self.run.name,
            step=step.name,
            image=image,
            env=self.environment(step, role, extension),
            workdir=workdir,
            results_dir=results_dir,
            log_path=record.log_path,
            codeset_path=codeset_path,
            shared_paths=tuple(extension.shared_paths),
            role=role,
        )

    def environment(self, step: Step, role: str | None, extension: ExtensionSetup) -> dict[str, str]:
        """The step's variables, later entries winning: runner defaults, extensions, env, inputs, contract."""
        env: dict[str, str] = {}
        given = {names.input_variable(i.name) for i in step.value_inputs}
        given |= {v.replace("-", "_") for v in given}
        defaults = self.executor.implicit_inputs(role)
        if role == "builder" and self.config.registry:
            defaults[names.input_variable("registry")] = self.config.registry
            defaults[names.input_variable("pull_registry")] = self.config.pull_registry or self.config.registry
        if self.verbose_steps:
            defaults[names.VERBOSE] = "true"
        env.update({k: v for k, v in defaults.items() if k not in given})
        env.update(extension.env)
        for item in step.env:
            env[item.name] = self.render(item.value, step)
        for item in step.value_inputs:
            env[names.input_variable(item.name)] = self.render(item.value or "", step)
        if step.result_name:
            env[names.TASK_RESULT] = step.result_name
        env[names.WORKFLOW_NAME] = self.workflow.name
        env[names.WORKFLOW_NAMESPACE] = self.config.namespace
        return env

    def render(self, value: str, step: Step) -> str:
        if not is_template(value):
            return value

        def resolve(ref: Reference) -> str:
            if ref.kind is RefKind.STEP_OUTPUT:
                try:
                    return self.outputs[ref.name][ref.output or ""]
                except KeyError:
                    raise WorkflowError(
                        f"step '{step.name}': {ref} has no value (did step '{ref.name}' run?)"
                    ) from None
            if ref.kind is RefKind.EXTENSION_CFG:
                return self.extensions[step.name].value(ref.name, ref.output or "", step.name)
            if ref.kind in (RefKind.CODESET_NAME, RefKind.CODESET_PROJECT):
                codeset = self.codesets[ref.name][0]
                return codeset.name if ref.kind is RefKind.CODESET_NAME else codeset.project
            return self.values[ref.name]

        return render(value, resolve)

    def read_outputs(self, step: Step, results_dir: Path) -> dict[str, str]:
        """The step's outputs from its results folder; its first (TASK_RESULT) must be there."""
        outputs = {}
        for position, name in enumerate(step.outputs):
            path = results_dir / name
            try:
                outputs[name] = path.read_text(encoding="utf-8").rstrip("\n")
            except FileNotFoundError:
                if position == 0:
                    raise WorkflowError(
                        f"step '{step.name}' succeeded but wrote no result '{name}'",
                        hint=f"a step writes its output to $FUSEML_RESULTS_DIR/$TASK_RESULT ({path})",
                    ) from None
                log.warning("step %s wrote no output '%s' (%s)", step.name, name, path)
        return outputs

    def workflow_outputs(self) -> dict[str, str]:
        """Each workflow output: the step output of the same name (the last step's, if several)."""
        found: dict[str, str] = {}
        for step in self.workflow.steps:
            for name, value in self.outputs.get(step.name, {}).items():
                found[name] = value
        return {o.name: found[o.name] for o in self.workflow.outputs if o.name in found}
