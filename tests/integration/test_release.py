"""The release rehearsal (``make release``) against a real registry, and ``make images`` labelled the same way.

One run of ``tools/release.py`` for the predictor image (the smallest) on
linux/amd64 and linux/arm64 (buildah; arm64 under qemu-user-static; both FROM
the local debootstrap bases, reused by tag) pushes an OCI index to Debian's
``docker-registry``; the tests then read what a user would pull: the index,
each platform's config and labels, the SBOM files, and the arm64 image run
under emulation. A second run of the same version must be refused.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.services.registry import Registry
from tests.fixtures.images import ROOT, docker, remove_image
from tools import images

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.slow, pytest.mark.release]

IMAGE = "kserve-predictor"
PLATFORMS = ("linux/amd64", "linux/arm64")
INDEX = "application/vnd.oci.image.index.v1+json"
RELEASE_TIMEOUT = 3600


@dataclass(frozen=True)
class Rehearsal:
    registry: Registry
    namespace: str
    version: str
    out: Path
    run: subprocess.CompletedProcess[str]

    @property
    def repository(self) -> str:
        return f"{self.namespace}/{IMAGE}"

    @property
    def reference(self) -> str:
        return f"{self.registry.host}/{self.repository}:{self.version}"


def release(registry: Registry, namespace: str, version: str, out: Path) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable, "-m", "tools.release", "--registry", f"{registry.host}/{namespace}",
        "--platforms", ",".join(PLATFORMS), "--images", IMAGE, "--version", version, "--out", str(out),
    ]  # fmt: skip
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=RELEASE_TIMEOUT, check=False)


def get(registry: Registry, path: str, accept: str = INDEX) -> tuple[dict, str]:
    request = urllib.request.Request(f"{registry.url}/v2/{path}", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read()), answer.headers.get("Docker-Content-Digest", "")


@pytest.fixture(scope="module")
def rehearsal(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Rehearsal:
    version = f"0.0.0-rehearsal.{secrets.token_hex(4)}"
    out = tmp_path_factory.mktemp("release")
    run = release(registry, "fuseml-steps", version, out)
    assert run.returncode == 0, f"tools.release failed:\n{run.stderr[-6000:]}"
    return Rehearsal(registry=registry, namespace="fuseml-steps", version=version, out=out, run=run)


def platform_configs(rehearsal: Rehearsal) -> dict[str, dict]:
    index, _ = get(rehearsal.registry, f"{rehearsal.repository}/manifests/{rehearsal.version}")
    configs = {}
    for entry in index["manifests"]:
        manifest, _ = get(rehearsal.registry, f"{rehearsal.repository}/manifests/{entry['digest']}", entry["mediaType"])
        config, _ = get(rehearsal.registry, f"{rehearsal.repository}/blobs/{manifest['config']['digest']}", "*/*")
        configs[f"{entry['platform']['os']}/{entry['platform']['architecture']}"] = config
    return configs


def test_the_index_lists_both_platforms(rehearsal: Rehearsal) -> None:
    index, _ = get(rehearsal.registry, f"{rehearsal.repository}/manifests/{rehearsal.version}")
    assert index["mediaType"] == INDEX
    assert sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]) == sorted(
        PLATFORMS
    )
    # The commit tag points at the same index.
    revision = images.git_revision()
    _, by_version = get(rehearsal.registry, f"{rehearsal.repository}/manifests/{rehearsal.version}")
    _, by_sha = get(rehearsal.registry, f"{rehearsal.repository}/manifests/sha-{revision}")
    assert by_version == by_sha and by_version.startswith("sha256:")


def test_each_platform_config_carries_the_labels(rehearsal: Rehearsal) -> None:
    manifest = images.load()
    (image,) = manifest.select([IMAGE])
    configs = platform_configs(rehearsal)
    assert set(configs) == set(PLATFORMS)
    for platform, config in configs.items():
        assert config["architecture"] == platform.split("/")[1]
        found = config["config"]["Labels"]
        created = found["org.opencontainers.image.created"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created), created
        expected = images.labels(manifest, image, rehearsal.version, images.git_revision(), created)
        assert {key: found.get(key) for key in expected} == expected, platform


def test_the_arm64_image_runs_under_emulation(rehearsal: Rehearsal) -> None:
    pulled = docker("pull", "--platform", "linux/arm64", rehearsal.reference, timeout=600)
    assert pulled.returncode == 0, pulled.stderr
    try:
        arch = docker("image", "inspect", "--format", "{{.Architecture}}", rehearsal.reference)
        assert arch.stdout.strip() == "arm64"
        ran = docker("run", "--rm", "--platform", "linux/arm64", rehearsal.reference, "run", "--help")
        assert ran.returncode == 0, ran.stderr
        assert "usage: python -m steps.predictor" in ran.stdout
        machine = docker("run", "--rm", "--platform", "linux/arm64", rehearsal.reference, "python", "-c",
                         "import platform; print(platform.machine())")  # fmt: skip
        assert machine.stdout.strip() == "aarch64", machine.stderr
    finally:
        remove_image(rehearsal.reference)


def test_the_sbom_names_the_pinned_packages(rehearsal: Rehearsal) -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["predictor"]
    pinned = dict(pin.split("==") for pin in pins)
    assert pinned
    for platform in PLATFORMS:
        path = rehearsal.out / f"{IMAGE}-{rehearsal.version}-{platform.split('/')[1]}.cdx.json"
        sbom = json.loads(path.read_text())
        assert sbom["bomFormat"] == "CycloneDX"
        assert sbom["metadata"]["component"]["version"] == rehearsal.version
        components = {c["name"].lower(): c for c in sbom["components"]}
        for name, version in pinned.items():
            assert components[name.lower()]["version"] == version, (platform, name)
            assert components[name.lower()]["purl"] == f"pkg:pypi/{name.lower()}@{version}"


def test_pushing_the_same_version_again_is_refused(rehearsal: Rehearsal, tmp_path: Path) -> None:
    _, before = get(rehearsal.registry, f"{rehearsal.repository}/manifests/{rehearsal.version}")
    again = release(rehearsal.registry, rehearsal.namespace, rehearsal.version, tmp_path)
    assert again.returncode == 1
    assert f"{rehearsal.reference} is already published and release tags are immutable" in again.stderr
    _, after = get(rehearsal.registry, f"{rehearsal.repository}/manifests/{rehearsal.version}")
    assert after == before
    assert not list(tmp_path.glob("*.cdx.json")), "a refused release must not build anything"


def test_make_images_labels_match_the_released_ones(rehearsal: Rehearsal, base_image: str) -> None:
    """``make images`` runs ``tools.images build``: its image says what the released one says (but the time)."""
    tag = f"fuseml-tests/{IMAGE}:{rehearsal.version}"
    argv = [
        sys.executable, "-m", "tools.images", "build", "--images", IMAGE, "--base-image", base_image,
        "--prefix", "fuseml-tests", "--version", rehearsal.version, "--pip-ca", "/etc/ssl/certs/ca-certificates.crt",
    ]  # fmt: skip
    built = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    assert built.returncode == 0, built.stderr[-6000:]
    assert built.stdout.strip() == tag
    try:
        local = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", tag).stdout)
    finally:
        remove_image(tag)
    released = platform_configs(rehearsal)["linux/amd64"]["config"]["Labels"]
    keys = [
        key for key in images.labels(images.load(), images.load().images[0], "", "", "") if not key.endswith("created")
    ]
    assert len(keys) == 6
    assert {k: local.get(k) for k in keys} == {k: released.get(k) for k in keys}
    assert local["org.opencontainers.image.created"]
