"""Rehearse a release here: multi-arch images, an OCI index each, pushed to a real registry, with an SBOM.

The release workflow builds with Buildx on GitHub; this does the same job
without a daemon, so it can be tried (and tested) on a machine with a local
registry only: buildah builds each platform (arm64 under qemu-user-static
through binfmt_misc) from the Dockerfiles and label values of ``images.yaml``
(``tools/images.py``), adds them to a manifest list and pushes it as an OCI
image index. Each platform image gets a CycloneDX SBOM of the Python packages
installed in it, written beside the others in ``--out``. A version that the
registry already has is refused: release tags are immutable.

Base images: ``--base-image`` (a multi-arch image such as ``python:3.11-slim``)
or, by default, the local debootstrap base of each architecture
(``tools/base_image.py``, made once and reused by tag), since Docker Hub may
not be reachable.

CLI: ``python -m tools.release --registry 127.0.0.1:5000/fuseml-steps [--platforms …] [--images …]``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import ipaddress
import json
import logging
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.images import ROOT, Image, ImagesError, Manifest, created_now, git_revision, label_args, labels, load

log = logging.getLogger(__name__)

BUILDAH = "/usr/bin/buildah"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_TIMEOUT = 3600
# Accept headers of a manifest HEAD: an index, a single manifest, Docker's or OCI's.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


class ReleaseError(ImagesError):
    """The rehearsal cannot go on; the message says which image, which step, and what to do."""


@dataclass(frozen=True)
class Released:
    reference: str  # registry/name:version
    digest: str  # of the pushed index
    sboms: tuple[Path, ...]


def is_loopback(registry: str) -> bool:
    host = registry.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def published(registry: str, name: str, tag: str) -> bool:
    """Whether ``registry/name:tag`` exists (a manifest HEAD); anonymous, so for the registries a rehearsal uses."""
    host, _, namespace = registry.partition("/")
    repository = f"{namespace}/{name}" if namespace else name
    scheme = "http" if is_loopback(registry) else "https"
    request = urllib.request.Request(
        f"{scheme}://{host}/v2/{repository}/manifests/{tag}", method="HEAD", headers={"Accept": MANIFEST_TYPES}
    )
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise ReleaseError(f"{host} answered {e.code} for {repository}:{tag}; is it a registry we may read?") from e
    except OSError as e:
        raise ReleaseError(f"registry {host} does not answer ({e}); start it or fix --registry") from e


def buildah(*args: str, timeout: float = 600) -> str:
    """Run buildah; its stderr becomes the error when it fails."""
    argv = [BUILDAH, *args]
    log.debug("running %s", " ".join(argv))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise ReleaseError(f"buildah {args[0]} {args[1] if len(args) > 1 else ''} failed:\n{done.stderr[-6000:]}")
    return done.stdout


def local_base(arch: str) -> str:
    """The debootstrap base image of ``arch`` in buildah's storage, copied from Docker's when it is new there."""
    from tools.base_image import default_tag, ensure_base_image
    from tools.dockerd import ensure_docker

    client = ensure_docker()
    try:
        tag = ensure_base_image(client, tag=default_tag(arch), arch=arch)
        image_id = client.images.get(tag).id.removeprefix("sha256:")
    finally:
        client.close()
    name = f"docker.io/{tag}"
    inspect = [BUILDAH, "inspect", "--type", "image", "--format", "{{.FromImageID}} {{.OCIv1.Architecture}}", name]
    inspected = subprocess.run(inspect, capture_output=True, text=True, check=False)
    if inspected.returncode != 0 or inspected.stdout.split()[0] != image_id:
        log.info("copying base image %s from Docker into buildah's storage", tag)
        buildah("pull", "--quiet", f"docker-daemon:{tag}")
        inspected = subprocess.run(inspect, capture_output=True, text=True, check=False)
    found = inspected.stdout.split()[-1] if inspected.stdout.split() else "nothing"
    if found != arch:
        raise ReleaseError(
            f"base image {tag} is for {found}, not {arch}; "
            f"rebuild it: python -m tools.base_image --arch {arch} --rebuild"
        )
    return name


def build_platform(
    image: Image, platform: str, base: str, pull: str, values: dict[str, str], list_name: str, iidfile: Path
) -> str:
    """Build one platform of ``image`` into the manifest list ``list_name``; its image id."""
    log.info("building %s for %s FROM %s", image.name, platform, base)
    secret = ["--secret", f"id=pip_ca,src={CA_BUNDLE}"] if CA_BUNDLE.exists() else []
    buildah(
        "build", "--platform", platform, f"--pull={pull}", "--layers", "--format", "oci",
        "-f", str(ROOT / image.dockerfile), "--build-arg", f"BASE_IMAGE={base}", *secret, *label_args(values),
        "--manifest", list_name, "--iidfile", str(iidfile), str(ROOT / image.context),
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    return iidfile.read_text().strip().removeprefix("sha256:")


def installed_packages(image_id: str) -> dict[str, str]:
    """Name -> version of the Python distributions in the image's /opt/venv, read from its files (any arch)."""
    container = buildah("from", "--pull=never", image_id).strip()
    try:
        root = Path(buildah("mount", container).strip())
        sites = sorted(root.glob("opt/venv/lib/python3*/site-packages"))
        if not sites:
            raise ReleaseError(f"image {image_id[:12]} has no /opt/venv/lib/python3*/site-packages to make an SBOM of")
        found = {}
        for dist in importlib.metadata.distributions(path=[str(s) for s in sites]):
            name = dist.metadata["Name"]
            if name:
                found[name] = dist.version
        return found
    finally:
        subprocess.run([BUILDAH, "umount", container], capture_output=True, check=False)
        subprocess.run([BUILDAH, "rm", container], capture_output=True, check=False)


def write_sbom(path: Path, reference: str, platform: str, packages: dict[str, str]) -> Path:
    """A CycloneDX JSON SBOM of ``packages`` for one platform image of ``reference``."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    name, _, version = reference.rpartition(":")
    bom = Bom()
    image = Component(name=name, version=version, type=ComponentType.CONTAINER, description=f"{reference} ({platform})")
    bom.metadata.component = image
    libraries = [
        Component(
            name=package,
            version=package_version,
            type=ComponentType.LIBRARY,
            purl=PackageURL(type="pypi", name=package.lower(), version=package_version),
        )
        for package, package_version in sorted(packages.items(), key=lambda item: item[0].lower())
    ]
    for library in libraries:
        bom.components.add(library)
    # The image contains every package; without this edge the dependency graph would be "incomplete".
    bom.register_dependency(image, libraries)
    path.write_text(JsonV1Dot6(bom).output_as_string(indent=2))
    return path


def push(list_name: str, reference: str, tls_verify: bool, digest_file: Path) -> str:
    buildah(
        "manifest", "push", "--all", "--format", "oci", f"--tls-verify={str(tls_verify).lower()}",
        "--digestfile", str(digest_file), list_name, f"docker://{reference}",
    )  # fmt: skip
    return digest_file.read_text().strip()


def release_image(
    manifest: Manifest,
    image: Image,
    registry: str,
    version: str,
    platforms: Sequence[str],
    out: Path,
    base_image: str | None,
    latest: bool,
) -> Released:
    reference = f"{registry}/{image.name}:{version}"
    if published(registry, image.name, version):
        raise ReleaseError(f"{reference} is already published and release tags are immutable; release a new version")
    revision = git_revision()
    values = labels(manifest, image, version, revision, created_now())
    list_name = f"localhost/fuseml-release/{image.name}:{version}"
    subprocess.run([BUILDAH, "manifest", "rm", list_name], capture_output=True, check=False)
    sboms = []
    with tempfile.TemporaryDirectory(prefix="fuseml-release-") as work:
        for platform in platforms:
            arch = platform.split("/")[1]
            base, pull = (base_image, "true") if base_image else (local_base(arch), "never")
            image_id = build_platform(image, platform, base, pull, values, list_name, Path(work) / f"{arch}.iid")
            sbom = out / f"{image.name}-{version}-{arch}.cdx.json"
            sboms.append(write_sbom(sbom, reference, platform, installed_packages(image_id)))
            log.info("%s %s: SBOM %s", image.name, platform, sbom)
        # Checked again right before the push: another release may have pushed while we built.
        if published(registry, image.name, version):
            raise ReleaseError(f"{reference} was published while this build ran; release tags are immutable")
        tls_verify = not is_loopback(registry)
        # The tags the release workflow pushes (metadata-action: type=raw version, type=sha,format=long).
        tags = [version, *([f"sha-{revision}"] if revision else []), *(["latest"] if latest else [])]
        digest = ""
        try:
            for tag in tags:
                digest = push(list_name, f"{registry}/{image.name}:{tag}", tls_verify, Path(work) / "digest")
        finally:
            # The list is only the push's vehicle; the platform images stay as the next build's layer cache.
            subprocess.run([BUILDAH, "manifest", "rm", list_name], capture_output=True, check=False)
    log.info("pushed %s@%s (%s)", reference, digest, ", ".join(tags))
    return Released(reference=reference, digest=digest, sboms=tuple(sboms))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.release", description=__doc__.splitlines()[0])
    parser.add_argument("--registry", required=True, help="registry and namespace, e.g. 127.0.0.1:5000/fuseml-steps")
    parser.add_argument("--platforms", help="comma separated (default: images.yaml's)")
    parser.add_argument("--images", help="names, comma or space separated (default: all)")
    parser.add_argument("--version", help="default: images.yaml's version")
    parser.add_argument("--base-image", help="one multi-arch FROM image (default: the local debootstrap bases)")
    parser.add_argument("--latest", action="store_true", help="also tag latest (only for the newest release)")
    parser.add_argument("--out", type=Path, default=Path("dist/release"), help="SBOM folder (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from runner.services import ServiceStartError

    try:
        manifest = load()
        names = [n for n in (args.images or "").replace(",", " ").split() if n]
        platforms = [p for p in (args.platforms or ",".join(manifest.platforms)).split(",") if p]
        args.out.mkdir(parents=True, exist_ok=True)
        results = [
            release_image(
                manifest, image, args.registry.rstrip("/"), args.version or manifest.version, platforms,
                args.out, args.base_image, args.latest,
            )
            for image in manifest.select(names)
        ]  # fmt: skip
    except (ImagesError, ServiceStartError) as e:
        log.error("%s", e)
        return 1
    print(json.dumps([{"reference": r.reference, "digest": r.digest, "sboms": [str(s) for s in r.sboms]}
                      for r in results], indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
