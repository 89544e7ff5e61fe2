"""A local Python base image built from Debian, since Docker Hub is not reachable.

Upstream images start from ``python:3.11-slim``; here the same role is played by
a Debian bookworm root filesystem made with ``debootstrap`` from Debian's own
mirror and imported into Docker. Its Python is Debian's (``/usr/bin/python3``,
3.11, with ``venv`` and ``pip``), so Dockerfiles that use it call ``python3``.
Building takes minutes, so an existing image with the tag is reused.

CLI: ``python -m tools.base_image`` builds (or finds) it and prints the tag.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import docker
from docker.errors import ImageNotFound

from runner.services import ServiceStartError

log = logging.getLogger(__name__)

DEFAULT_TAG = "fuseml-local/python:3.11-bookworm"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
DEBOOTSTRAP = "/usr/sbin/debootstrap"
LOCK_PATH = Path("/var/tmp/fuseml-base-image.lock")
# Folders of the root filesystem that an image does not need: caches, docs, logs.
CLEAN_GLOBS = (
    "var/cache/apt/archives/*.deb",
    "var/cache/apt/*.bin",
    "var/lib/apt/lists/*",
    "var/cache/debconf/*-old",
    "var/log/*",
    "usr/share/doc/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "usr/share/lintian/*",
    "tmp/*",
    "root/.cache",
)
IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PYTHONDONTWRITEBYTECODE=1",
    'CMD ["python3"]',
    f"LABEL org.opencontainers.image.description=debootstrap-{SUITE}-minbase-python3",
)


def ensure_base_image(
    client: docker.DockerClient, tag: str = DEFAULT_TAG, mirror: str = MIRROR, rebuild: bool = False
) -> str:
    """The tag of the local Python base image, building it first if it is missing."""
    if not rebuild and _exists(client, tag):
        log.info("base image %s exists: reusing it", tag)
        return tag
    # Parallel test sessions would each spend a minute building the same image: one builds, the others wait.
    with open(LOCK_PATH, "w") as lock:
        log.info("waiting for the base image build lock %s", LOCK_PATH)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not rebuild and _exists(client, tag):
            log.info("base image %s was built meanwhile: reusing it", tag)
            return tag
        _build(client, tag, mirror)
    return tag


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def _build(client: docker.DockerClient, tag: str, mirror: str) -> None:
    started = time.monotonic()
    log.info("=== Building base image %s from Debian %s (takes minutes) ===", tag, SUITE)
    with tempfile.TemporaryDirectory(prefix="fuseml-base-image-", dir="/var/tmp") as work:
        rootfs = Path(work) / "rootfs"
        _debootstrap(rootfs, mirror, Path(work) / "debootstrap.log")
        _clean(rootfs)
        _import(client, rootfs, Path(work) / "rootfs.tar", tag)
    size = client.images.get(tag).attrs.get("Size", 0)
    log.info("base image %s ready in %.0fs (%.0f MB)", tag, time.monotonic() - started, size / 1e6)


def _debootstrap(rootfs: Path, mirror: str, log_path: Path) -> None:
    binary = shutil.which(DEBOOTSTRAP) or shutil.which("debootstrap")
    if binary is None:
        raise ServiceStartError("debootstrap not found: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise ServiceStartError("debootstrap needs root to build the base image: run as root or build it once as root")
    argv = [
        binary,
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(rootfs),
        mirror,
    ]
    log.info("running %s", " ".join(argv))
    tail: deque[str] = deque(maxlen=40)
    with open(log_path, "w") as out:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            tail.append(line.rstrip())
            # debootstrap's "I: Retrieving/Validating/Unpacking <pkg>" lines are one per package:
            # only the phase changes are milestones.
            if line.startswith(("I: Retrieving Release", "I: Resolving", "I: Found", "I: Installing", "I: Base")):
                log.info("debootstrap: %s", line.rstrip())
            else:
                log.debug("debootstrap: %s", line.rstrip())
        code = proc.wait()
    if code != 0:
        detail = "\n".join(tail)
        raise ServiceStartError(f"debootstrap failed with code {code} (is {mirror} reachable?):\n{detail}")


def _clean(rootfs: Path) -> None:
    """Remove apt caches, docs and logs: they make the image bigger and nothing reads them."""
    removed = 0
    for pattern in CLEAN_GLOBS:
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    for cache in rootfs.glob("usr/lib/python3*/**/__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    log.info("cleaned %d cache/doc entries from the root filesystem", removed)


def _import(client: docker.DockerClient, rootfs: Path, tar_path: Path, tag: str) -> None:
    log.info("importing root filesystem as %s", tag)
    # tar (not Python's tarfile) keeps device nodes, hard links, xattrs and numeric owners exactly.
    subprocess.run(
        ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tar_path), "."],
        check=True,
        capture_output=True,
    )
    repository, version = tag, "latest"
    if ":" in tag.rsplit("/", 1)[-1]:
        repository, version = tag.rsplit(":", 1)
    client.api.import_image_from_file(str(tar_path), repository=repository, tag=version, changes=list(IMAGE_CHANGES))
    try:
        client.images.get(tag)
    except ImageNotFound as e:
        raise ServiceStartError(f"docker import of {tar_path} did not create {tag}; see the dockerd log") from e


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=DEFAULT_TAG, help="image tag (default: %(default)s)")
    parser.add_argument("--mirror", default=MIRROR, help="Debian mirror (default: %(default)s)")
    parser.add_argument("--rebuild", action="store_true", help="build even if the tag exists")
    parser.add_argument("-v", "--verbose", action="store_true", help="show every debootstrap line")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from tools.dockerd import ensure_docker

    client = ensure_docker()
    try:
        print(ensure_base_image(client, tag=args.tag, mirror=args.mirror, rebuild=args.rebuild))
    except ServiceStartError as e:
        log.error("%s", e)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
