"""The checks Tekton's admission webhook makes that a schema cannot.

A schema says a Pipeline is well formed; the webhook also refuses one whose
``$(params.X)`` is not declared, whose ``$(tasks.T.results.R)`` names a task
or result that does not exist, whose tasks run in a cycle, whose workspaces are
not bound, or whose names break Tekton's grammar. Finding those here means an
exported document fails on this machine with the document and the place named,
not at ``kubectl apply`` time. The grammar follows tektoncd/pipeline's
``pkg/apis/pipeline/v1`` validation (params, results, pipeline task names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

PARAM_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.-]*$")
RESULT_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VARIABLE = re.compile(r"\$\((?P<body>[^()]*)\)")
# $(NAME) without a dot is Kubernetes' reference to an earlier env variable, which Tekton leaves to the kubelet.
_ENV_REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM = re.compile(r"^params\.(?P<name>[^.\[\]]+)$")
_TASK_RESULT = re.compile(r"^tasks\.(?P<task>[^.]+)\.results\.(?P<result>[^.\[\]]+)$")
_WORKSPACE = re.compile(r"^workspaces\.(?P<name>[^.]+)\.(path|bound|claim|volume)$")
_STEP_RESULT_PATH = re.compile(r"^step\.results\.(?P<name>[^.]+)\.path$")
_STEPS_RESULT = re.compile(r"^steps\.(?P<step>[^.]+)\.results\.(?P<name>[^.]+)$")
_RESULTS_PATH = re.compile(r"^results\.(?P<name>[^.]+)\.path$")
CONTEXT_VARIABLES = {
    "context.pipelineRun.name",
    "context.pipelineRun.namespace",
    "context.pipelineRun.uid",
    "context.pipeline.name",
    "context.pipelineTask.retries",
    "context.taskRun.name",
    "context.taskRun.namespace",
    "context.taskRun.uid",
    "context.task.name",
    "context.task.retry-count",
}
# Results of Tasks fetched from the catalog by a resolver, which this check cannot read.
KNOWN_REMOTE_RESULTS = {"task/git-clone/0.9/git-clone.yaml": {"commit", "url", "committer-date"}}


def check_documents(documents: Iterable[dict[str, Any]]) -> list[str]:
    """Every problem in ``documents`` (Pipelines, PipelineRuns, Tasks, StepActions), as ``Kind/name: ...``."""
    documents = list(documents)
    pipelines = {d["metadata"]["name"]: d for d in documents if d.get("kind") == "Pipeline"}
    tasks = {d["metadata"]["name"]: d["spec"] for d in documents if d.get("kind") == "Task"}
    actions = {d["metadata"]["name"]: d["spec"] for d in documents if d.get("kind") == "StepAction"}
    problems: list[str] = []
    for doc in documents:
        kind = doc.get("kind")
        where = f"{kind}/{doc.get('metadata', {}).get('name') or doc.get('metadata', {}).get('generateName')}"
        if kind == "Pipeline":
            found = check_pipeline(doc["spec"], tasks)
        elif kind == "PipelineRun":
            found = check_pipeline_run(doc["spec"], pipelines)
        elif kind == "Task":
            found = check_task_spec(doc["spec"], "spec") + check_step_refs(doc["spec"], actions)
        elif kind == "StepAction":
            found = check_step_action(doc["spec"])
        else:
            found = []
        problems += [f"{where}: {p}" for p in found]
    return problems


def variables(node: Any) -> Iterator[tuple[str, str]]:
    """Each ``$(...)`` in ``node``'s strings, with the path where it is (``tasks[1].params[0].value``)."""
    yield from _walk(node, "")


def _walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        for match in _VARIABLE.finditer(node):
            body = match.group("body").strip()
            # $$(...) is an escaped literal
            if not node[: match.start()].endswith("$") and not _ENV_REFERENCE.match(body):
                yield path, body
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def _names(items: list[dict[str, Any]] | None, what: str, grammar: re.Pattern[str], problems: list[str]) -> set[str]:
    seen: set[str] = set()
    for item in items or []:
        name = item.get("name", "")
        if not grammar.match(name):
            problems.append(f"{what} name {name!r} does not match {grammar.pattern}")
        if name in seen:
            problems.append(f"{what} {name!r} is declared twice")
        seen.add(name)
    return seen


def check_pipeline(spec: dict[str, Any], known_tasks: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """``known_tasks``: the specs of Tasks a ``taskRef`` may name (those applied with the pipeline)."""
    known_tasks = known_tasks or {}
    problems: list[str] = []
    params = _names(spec.get("params"), "param", PARAM_NAME, problems)
    workspaces = _names(spec.get("workspaces"), "workspace", RESULT_NAME, problems)
    tasks = spec.get("tasks") or []
    names = _names(tasks, "task", DNS_LABEL, problems)
    results_of = {t["name"]: _task_results(t, known_tasks) for t in tasks}
    edges: dict[str, set[str]] = {t["name"]: set(t.get("runAfter") or []) for t in tasks}
    for i, task in enumerate(tasks):
        name = task["name"]
        here = f"tasks[{i}] ({name})"
        for after in task.get("runAfter") or []:
            if after not in names:
                problems.append(f"{here}: runAfter names task {after!r}, which does not exist")
        outer = {k: v for k, v in task.items() if k != "taskSpec"}
        for path, body in variables(outer):
            problems += _pipeline_variable(body, f"{here}.{path}", params, results_of, name, edges[name])
        for binding in task.get("workspaces") or []:
            if binding.get("workspace") not in workspaces:
                problems.append(f"{here}: workspace {binding.get('workspace')!r} is not a workspace of the pipeline")
        if "taskSpec" in task:
            problems += [f"{here}: {p}" for p in check_task_spec(task["taskSpec"], "taskSpec")]
        target = task.get("taskSpec") or known_tasks.get((task.get("taskRef") or {}).get("name", ""))
        if target is not None:
            bound = {b.get("name") for b in task.get("workspaces") or []}
            declared_workspaces = {w["name"] for w in target.get("workspaces") or []}
            for extra in sorted(bound - declared_workspaces):
                problems.append(f"{here}: binds workspace {extra!r}, which the task does not declare")
            for declared in target.get("workspaces") or []:
                if declared["name"] not in bound and not declared.get("optional"):
                    problems.append(f"{here}: the task's workspace {declared['name']!r} is not bound")
            given = {p.get("name") for p in task.get("params") or []}
            declared_params = {p["name"] for p in target.get("params") or []}
            for extra in sorted(given - declared_params):
                problems.append(f"{here}: passes param {extra!r}, which the task does not declare")
            for declared in target.get("params") or []:
                if declared["name"] not in given and "default" not in declared:
                    problems.append(f"{here}: the task's param {declared['name']!r} gets no value")
    for j, result in enumerate(spec.get("results") or []):
        if not RESULT_NAME.match(result.get("name", "")):
            problems.append(f"results[{j}]: name {result.get('name')!r} does not match {RESULT_NAME.pattern}")
        for path, body in variables(result.get("value", "")):
            problems += _pipeline_variable(body, f"results[{j}].value{path}", params, results_of, None, set())
    cycle = _cycle(edges)
    if cycle:
        problems.append(f"tasks run in a cycle: {' -> '.join(cycle)}")
    return problems


def _task_results(task: dict[str, Any], known_tasks: dict[str, dict[str, Any]]) -> set[str] | None:
    """The results a pipeline task declares; None when they cannot be known (an unknown remote Task)."""
    ref = task.get("taskRef") or {}
    spec = task.get("taskSpec") or known_tasks.get(ref.get("name", ""))
    if spec is not None:
        return {r["name"] for r in spec.get("results") or []}
    path = next((p.get("value") for p in ref.get("params") or [] if p.get("name") == "pathInRepo"), None)
    return KNOWN_REMOTE_RESULTS.get(path)


def _pipeline_variable(
    body: str,
    where: str,
    params: set[str],
    results_of: dict[str, set[str] | None],
    task: str | None,
    after: set[str],
) -> list[str]:
    match = _PARAM.match(body)
    if match:
        return [] if match["name"] in params else [f"{where}: $({body}) names an undeclared param"]
    match = _TASK_RESULT.match(body)
    if match:
        producer, result = match["task"], match["result"]
        if producer not in results_of:
            return [f"{where}: $({body}) names task {producer!r}, which does not exist"]
        if producer == task:
            return [f"{where}: $({body}) is the task's own result"]
        known = results_of[producer]
        if known is None:
            return [f"{where}: $({body}): the results of task {producer!r} cannot be checked"]
        after.add(producer)  # a result reference orders the tasks, as Tekton does
        return [] if result in known else [f"{where}: task {producer!r} declares no result {result!r}"]
    if body in CONTEXT_VARIABLES:
        return []
    return [f"{where}: $({body}) is not a variable a Pipeline can use"]


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in "runs after" (task -> the tasks it waits for), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt in edges and not state.get(nxt):
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if not state.get(node):
            found = visit(node)
            if found:
                return found
    return None


def check_task_spec(spec: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    params = _names(spec.get("params"), "param", PARAM_NAME, problems)
    results = _names(spec.get("results"), "result", RESULT_NAME, problems)
    workspaces = _names(spec.get("workspaces"), "workspace", RESULT_NAME, problems)
    steps = _names(spec.get("steps"), "step", DNS_LABEL, problems)
    for path, body in variables(spec):
        full = f"{where}.{path}"
        if (m := _PARAM.match(body)) is not None:
            if m["name"] not in params:
                problems.append(f"{full}: $({body}) names an undeclared param")
        elif (m := _WORKSPACE.match(body)) is not None:
            if m["name"] not in workspaces:
                problems.append(f"{full}: $({body}) names an undeclared workspace")
        elif (m := _RESULTS_PATH.match(body)) is not None:
            if m["name"] not in results:
                problems.append(f"{full}: $({body}) names an undeclared result")
        elif (m := _STEPS_RESULT.match(body)) is not None:
            if m["step"] not in steps:
                problems.append(f"{full}: $({body}) names step {m['step']!r}, which does not exist")
        elif body not in CONTEXT_VARIABLES:
            problems.append(f"{full}: $({body}) is not a variable a Task can use")
    for i, step in enumerate(spec.get("steps") or []):
        if "$(params." in (step.get("script") or ""):
            problems.append(f"{where}.steps[{i}].script: a param is interpolated into the script; pass it in env")
    return problems


def check_step_refs(spec: dict[str, Any], actions: dict[str, dict[str, Any]]) -> list[str]:
    """Steps that use a StepAction (``ref``) among the documents: params and results as it declares them."""
    problems: list[str] = []
    results_of: dict[str, set[str]] = {}
    for i, step in enumerate(spec.get("steps") or []):
        name = (step.get("ref") or {}).get("name")
        if name is None:
            continue
        action = actions.get(name)
        if action is None:
            problems.append(f"spec.steps[{i}].ref: StepAction {name!r} is not among the documents")
            continue
        results_of[step["name"]] = {r["name"] for r in action.get("results") or []}
        declared = {p["name"]: p for p in action.get("params") or []}
        given = {p["name"] for p in step.get("params") or []}
        problems += [
            f"spec.steps[{i}]: passes param {p!r}, which {name} does not declare" for p in sorted(given - set(declared))
        ]
        problems += [
            f"spec.steps[{i}]: {name}'s param {p!r} gets no value"
            for p, d in declared.items()
            if p not in given and "default" not in d
        ]
    for path, body in variables(spec.get("results") or []):
        m = _STEPS_RESULT.match(body)
        if m and m["step"] in results_of and m["name"] not in results_of[m["step"]]:
            problems.append(f"spec.results{path}: step {m['step']!r} declares no result {m['name']!r}")
    return problems


def check_step_action(spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    params = _names(spec.get("params"), "param", PARAM_NAME, problems)
    results = _names(spec.get("results"), "result", RESULT_NAME, problems)
    for path, body in variables(spec):
        if (m := _PARAM.match(body)) is not None:
            if m["name"] not in params:
                problems.append(f"spec.{path}: $({body}) names an undeclared param")
            elif path.startswith("script"):
                problems.append(f"spec.{path}: a param is interpolated into the script; pass it in env")
        elif (m := _STEP_RESULT_PATH.match(body)) is not None:
            if m["name"] not in results:
                problems.append(f"spec.{path}: $({body}) names an undeclared result")
        elif body not in CONTEXT_VARIABLES:
            problems.append(f"spec.{path}: $({body}) is not a variable a StepAction can use")
    return problems


def check_pipeline_run(spec: dict[str, Any], pipelines: dict[str, dict[str, Any]]) -> list[str]:
    name = (spec.get("pipelineRef") or {}).get("name")
    pipeline = pipelines.get(name or "")
    if pipeline is None:
        return [f"pipelineRef names {name!r}, which is not among the documents"]
    problems: list[str] = []
    declared = {p["name"]: p for p in pipeline["spec"].get("params") or []}
    given = {p["name"] for p in spec.get("params") or []}
    problems += [f"param {p!r} is not a param of Pipeline {name}" for p in sorted(given - set(declared))]
    problems += [
        f"param {p!r} of Pipeline {name} has no default and no value"
        for p, d in declared.items()
        if p not in given and "default" not in d
    ]
    wanted = {w["name"] for w in pipeline["spec"].get("workspaces") or [] if not w.get("optional")}
    bound = {w["name"] for w in spec.get("workspaces") or []}
    problems += [f"workspace {w!r} of Pipeline {name} is not bound" for w in sorted(wanted - bound)]
    tasks = {t["name"] for t in pipeline["spec"].get("tasks") or []}
    for item in spec.get("taskRunSpecs") or []:
        if item.get("pipelineTaskName") not in tasks:
            problems.append(f"taskRunSpecs names task {item.get('pipelineTaskName')!r}, not a task of {name}")
    return problems
