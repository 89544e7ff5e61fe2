"""``run --help`` in each step image lists every input the step reads, in the catalog's words.

The step's ``input_docs.DOC`` must name exactly the params of its Tekton StepAction
(which tests/unit/test_tekton_catalog.py checks against the settings modules), with
the same descriptions: a new input cannot be missing from ``--help``, and the two
texts cannot drift apart.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.step_help import StepDoc
from steps.builder.input_docs import DOC as BUILDER
from steps.predictor.input_docs import DOC as PREDICTOR
from steps.trainer.input_docs import DOC as TRAINER

ROOT = Path(__file__).resolve().parents[2]
DOCS = {"builder": BUILDER, "trainer": TRAINER, "predictor": PREDICTOR}
# Params of a StepAction that are not step inputs: the trainer's image is the builder's output.
TEKTON_ONLY = {"trainer": {"image"}}


def stepaction_params(step: str) -> dict[str, str]:
    path = ROOT / "deploy" / "tekton" / f"fuseml-{step}" / "0.1" / f"fuseml-{step}.yaml"
    action = next(d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "StepAction")
    return {p["name"]: p["description"] for p in action["spec"]["params"] if p["name"] not in TEKTON_ONLY.get(step, ())}


def run_help(step: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "FUSEML_RESULTS_DIR": str(tmp_path / "results"), "TASK_RESULT": "out"}
    return subprocess.run(
        [sys.executable, "-m", f"steps.{step}", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("step", sorted(DOCS))
def test_help_documents_exactly_the_catalog_params_in_the_same_words(step: str) -> None:
    doc: StepDoc = DOCS[step]
    documented = {i.name: i.description for i in doc.inputs}
    assert documented == stepaction_params(step)


@pytest.mark.parametrize("step", sorted(DOCS))
def test_run_help_lists_every_input_variable_and_does_no_work(step: str, tmp_path: Path) -> None:
    done = run_help(step, "--help", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: run")
    for doc in DOCS[step].inputs:
        assert f"FUSEML_{doc.name.upper()}" in done.stdout
    assert "$FUSEML_RESULTS_DIR/$TASK_RESULT" in done.stdout
    assert not (tmp_path / "results").exists(), "--help must not run the step"


@pytest.mark.parametrize("step", sorted(DOCS))
def test_an_unknown_argument_is_a_usage_error_not_a_run(step: str, tmp_path: Path) -> None:
    done = run_help(step, "--no-such-flag", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in done.stderr
    assert not (tmp_path / "results").exists()
