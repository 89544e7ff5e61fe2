"""Running a workflow: bind the inputs, stage the codeset, run each step in order.

What a step sees is the contract's (CONTRACT.md): ``FUSEML_<INPUT>`` for each
value input, ``TASK_RESULT`` naming its first output, ``FUSEML_RESULTS_DIR``
(a per-step folder), ``FUSEML_ENV_WORKFLOW_NAME``/``_NAMESPACE``, its
extensions' variables, and the codeset as working directory. Its output is the
content of the result file, which later steps get through
``{{ steps.<step>.outputs.<name> }}``.

The codeset: the runner never writes into the user's folder. Each run copies it
to ``<state>/runs/<run>/codeset`` (without ``.git``, virtualenvs, ``mlruns`` and
caches) and writes ``.fuseml/_org`` (the codeset's project) and
``.fuseml/_project`` (its name) there, as FuseML's checkout would have them.
Name and project come from ``--codeset-name``/``--codeset-project``, else the
codeset's own ``.fuseml`` files, else the folder name and ``local``. The copy
is deleted when the run succeeds and kept for inspection when it fails.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from common import names
from common.errors import StepError
from common.logs import masker
from runner.config import Config
from runner.executors import Executor, StepSpec, get_executor, image_role
from runner.extensions import ExtensionSetup, step_extensions
from runner.runs import CANCELLED, FAILED, RUNNING, SKIPPED, SUCCEEDED, RunRecord, RunStore, StepRecord
from runner.templates import Reference, RefKind, is_template, references, render
from runner.workflow import CODESET, DEFAULT_CODESET_PATH, Step, Workflow, WorkflowError

log = logging.getLogger(__name__)

DEFAULT_ORG = "local"
RUNS_DIR = "runs"
# Never copied into a run's codeset: history, environments, local MLflow data, caches.
_COPY_SKIP = {".git", ".venv", "venv", "mlruns", "mlartifacts", "__pycache__", ".pytest_cache", ".ruff_cache"}
_FUSEML_KEEP = {"_org", "_project"}
_JOIN_INTERVAL = 0.2


@dataclass(frozen=True)
class Codeset:
    """A codeset on disk with the names FuseML would know it by."""

    path: Path
    name: str
    project: str = DEFAULT_ORG


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


def resolve_codeset(path: str | Path, name: str | None = None, project: str | None = None) -> Codeset:
    """The codeset at ``path``; explicit names win over its ``.fuseml`` files and the folder name."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise WorkflowError(f"codeset {path} is not a folder", hint="pass --codeset with the project's folder")
    return Codeset(
        folder,
        name or _read_first_line(folder / ".fuseml" / "_project") or folder.name,
        project or _read_first_line(folder / ".fuseml" / "_org") or DEFAULT_ORG,
    )


def stage_codeset(codeset: Codeset, dest: Path, skip: tuple[Path, ...] = ()) -> Path:
    """Copy ``codeset`` to ``dest`` and write its ``.fuseml`` names there; returns ``dest``."""
    skipped = {p.resolve() for p in skip}

    def ignore(folder: str, entries: list[str]) -> list[str]:
        here = Path(folder)
        ignored = [e for e in entries if e in _COPY_SKIP or (here / e).resolve() in skipped]
        if here.name == ".fuseml" and here.parent == codeset.path:
            ignored += [e for e in entries if e not in _FUSEML_KEEP]
        return ignored

    shutil.copytree(codeset.path, dest, symlinks=True, ignore=ignore)
    metadata = dest / ".fuseml"
    metadata.mkdir(exist_ok=True)
    (metadata / "_org").write_text(codeset.project + "\n")
    (metadata / "_project").write_text(codeset.name + "\n")
    return dest


def bind_inputs(workflow: Workflow, values: Mapping[str, str], codesets: Mapping[str, Codeset]) -> dict[str, str]:
    """The value of every workflow input: given, else its default; errors list what is missing."""
    problems = []
    known = {i.name for i in workflow.inputs}
    for name in values:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            problems.append(f"unknown input '{name}' (the workflow's inputs: {listed})")
    bound: dict[str, str] = {}
    for item in workflow.inputs:
        where = workflow.where(item.line)
        if item.type == CODESET:
            if item.name not in codesets:
                problems.append(f"{where}: codeset input '{item.name}' has no codeset: pass --codeset DIR")
            else:
                bound[item.name] = codesets[item.name].name
        elif item.name in values:
            bound[item.name] = values[item.name]
        elif item.default is not None:
            bound[item.name] = item.default
        else:
            problems.append(f"{where}: missing required input '{item.name}': pass --input {item.name}=VALUE")
    if problems:
        raise WorkflowError(f"the inputs do not fit workflow {workflow.name}", problems)
    return bound


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
    codesets = _codeset_map(workflow, codeset)
    values = bind_inputs(workflow, inputs, codesets)
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
        tail = _LogTail(record.log_path, lambda line: self.progress.step_log(self.run, record, masker().mask(line)))
        try:
            spec = self.spec(step, record)
            record.image = spec.image
            self.executor.check(spec)
            tail.start()
            record.exit_code = self.execute(spec)
            tail.stop()
            if self.cancel.is_set():
                record.status, record.error = CANCELLED, "interrupted"
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
        """Run the step in a thread, so Ctrl-C here cancels it (the step has its own session)."""
        outcome: dict[str, int | BaseException] = {}

        def target() -> None:
            try:
                outcome["code"] = self.executor.run(spec, self.cancel)
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                outcome["error"] = e

        worker = threading.Thread(target=target, name=f"step-{spec.step}", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(_JOIN_INTERVAL)
        except KeyboardInterrupt:
            self.cancel.set()
            worker.join()
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


class _LogTail:
    """Follows a growing log file in a thread and hands each complete line to ``emit``."""

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
            self._stop.wait(0.1)


def _codeset_map(workflow: Workflow, codeset: Codeset | Mapping[str, Codeset] | None) -> dict[str, Codeset]:
    """Codesets by workflow input name; a single Codeset goes to the workflow's one codeset input."""
    if codeset is None:
        return {}
    if isinstance(codeset, Codeset):
        inputs = workflow.codeset_inputs
        if len(inputs) != 1:
            listed = ", ".join(i.name for i in inputs) or "none"
            raise WorkflowError(
                f"workflow {workflow.name} has {len(inputs)} codeset inputs ({listed}), so one --codeset is ambiguous",
                hint="pass --codeset INPUT=DIR for each",
            )
        return {inputs[0].name: codeset}
    return dict(codeset)


def _read_first_line(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text.splitlines()[0].strip() if text else None
