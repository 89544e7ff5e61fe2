"""A local Python base image built from Debian, since Docker Hub is not reachable.

Upstream images start from ``python:3.11-slim``; here the same role is played by
a Debian bookworm root filesystem made with ``debootstrap`` from Debian's own
mirror and imported into Docker. Its Python is Debian's (``/usr/bin/python3``,
3.11, with ``venv`` and ``pip``), so Dockerfiles that use it call ``python3``.
Building takes minutes, so an existing image with the tag is reused.

``--arch arm64`` makes the same image for another Debian architecture (for the
multi-arch release rehearsal, ``tools/release.py``): debootstrap runs the
foreign packages' scripts under ``qemu-user-static`` through binfmt_misc, so
``qemu-aarch64`` must be enabled (``.ci/run`` does it). ``write_rootfs_tar``
gives the root filesystem as a tar for engines other than Docker (buildah).

CLI: ``python -m tools.base_image [--arch ARCH]`` builds (or finds) it and prints the tag.
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
HOST_ARCH = "amd64"
# Debian architecture -> the binfmt_misc entry that lets this amd64 host run its binaries.
BINFMT = {"arm64": "qemu-aarch64"}
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
DEBOOTSTRAP = "/usr/sbin/debootstrap"
LOCK_PATH = Path("/var/tmp/fuseml-base-image.lock")
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
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


def default_tag(arch: str = HOST_ARCH) -> str:
    """The host architecture keeps the tag the tests have always used; others get a suffix."""
    return DEFAULT_TAG if arch == HOST_ARCH else f"{DEFAULT_TAG}-{arch}"


def ensure_base_image(
    client: docker.DockerClient,
    tag: str = DEFAULT_TAG,
    mirror: str = MIRROR,
    rebuild: bool = False,
    arch: str = HOST_ARCH,
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
        _build(client, tag, mirror, arch)
    return tag


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def _build(client: docker.DockerClient, tag: str, mirror: str, arch: str) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuseml-base-image-", dir="/var/tmp") as work:
        tar_path = write_rootfs_tar(Path(work) / "rootfs.tar", mirror, arch)
        _import(client, tar_path, tag, arch)
    size = client.images.get(tag).attrs.get("Size", 0)
    log.info("base image %s ready in %.0fs (%.0f MB)", tag, time.monotonic() - started, size / 1e6)


def write_rootfs_tar(tar_path: Path, mirror: str = MIRROR, arch: str = HOST_ARCH) -> Path:
    """A cleaned Debian root filesystem for ``arch`` as a tar at ``tar_path``; ``IMAGE_CHANGES`` describe its config."""
    log.info("=== Building a %s base root filesystem from Debian %s (takes minutes) ===", arch, SUITE)
    _check_emulation(arch)
    rootfs = tar_path.parent / f"rootfs-{arch}"
    try:
        _debootstrap(rootfs, mirror, tar_path.parent / f"debootstrap-{arch}.log", arch)
        _clean(rootfs)
        # tar (not Python's tarfile) keeps device nodes, hard links, xattrs and numeric owners exactly.
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tar_path), "."],
            check=True,
            capture_output=True,
        )
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tar_path


def _check_emulation(arch: str) -> None:
    """A foreign root filesystem needs qemu through binfmt_misc; say how to enable it rather than fail midway."""
    if arch == HOST_ARCH:
        return
    entry = BINFMT.get(arch)
    if entry is None:
        raise ServiceStartError(f"no emulation known for Debian architecture {arch!r}: use one of {sorted(BINFMT)}")
    status = BINFMT_DIR / entry
    if not status.exists() or status.read_text().splitlines()[0] != "enabled":
        raise ServiceStartError(
            f"{arch} binaries cannot run here: {status} is not enabled; apt-get install qemu-user-static "
            f"binfmt-support, then mount -t binfmt_misc binfmt_misc {BINFMT_DIR} && update-binfmts --enable {entry}"
        )


def _debootstrap(rootfs: Path, mirror: str, log_path: Path, arch: str = HOST_ARCH) -> None:
    binary = shutil.which(DEBOOTSTRAP) or shutil.which("debootstrap")
    if binary is None:
        raise ServiceStartError("debootstrap not found: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise ServiceStartError("debootstrap needs root to build the base image: run as root or build it once as root")
    argv = [
        binary,
        "--variant=minbase",
        f"--arch={arch}",
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


def _import(client: docker.DockerClient, tar_path: Path, tag: str, arch: str) -> None:
    log.info("importing root filesystem as %s", tag)
    if arch == HOST_ARCH:
        repository, version = tag, "latest"
        if ":" in tag.rsplit("/", 1)[-1]:
            repository, version = tag.rsplit(":", 1)
        changes = list(IMAGE_CHANGES)
        client.api.import_image_from_file(str(tar_path), repository=repository, tag=version, changes=changes)
    else:
        # Neither the SDK's import nor `docker import --platform` records a foreign architecture in the
        # image config; BuildKit does for FROM scratch, and ADD unpacks the tar without running anything.
        dockerfile = tar_path.parent / "Dockerfile"
        dockerfile.write_text("\n".join(["FROM scratch", f"ADD {tar_path.name} /", *IMAGE_CHANGES]) + "\n")
        argv = ["/usr/bin/docker", "build", "--platform", f"linux/{arch}", "-t", tag, str(tar_path.parent)]
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, env={**os.environ, "DOCKER_BUILDKIT": "1"}
        )
        if done.returncode != 0:
            raise ServiceStartError(f"docker build of the {arch} base image {tag} failed:\n{done.stderr[-4000:]}")
    try:
        client.images.get(tag)
    except ImageNotFound as e:
        raise ServiceStartError(f"docker import of {tar_path} did not create {tag}; see the dockerd log") from e


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=HOST_ARCH, help="Debian architecture (default: %(default)s)")
    parser.add_argument("--tag", help=f"image tag (default: {DEFAULT_TAG}, with -ARCH for another architecture)")
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
        tag = args.tag or default_tag(args.arch)
        print(ensure_base_image(client, tag=tag, mirror=args.mirror, rebuild=args.rebuild, arch=args.arch))
    except ServiceStartError as e:
        log.error("%s", e)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
