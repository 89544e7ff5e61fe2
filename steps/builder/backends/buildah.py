"""buildah backend: daemonless builds, for Kubernetes pods (where Kaniko used to be).

What the pod needs (the builder image provides buildah; the rest is pod spec):

- run as root (``runAsUser: 0``);
- an unconfined seccomp profile (``seccompProfile: {type: Unconfined}``) and
  AppArmor unconfined, or else ``CAP_SYS_ADMIN`` (``privileged: true`` is the
  blunt way), because buildah creates mount namespaces;
- ``BUILDAH_ISOLATION=chroot`` (set here when unset): no nested user
  namespaces or runc needed inside the pod;
- storage: ``STORAGE_DRIVER=vfs`` works everywhere (slow, big); ``overlay``
  needs a kernel that allows overlay mounts in the pod (or fuse-overlayfs and
  ``/dev/fuse``). Mount an ``emptyDir`` on ``/var/lib/containers`` so layers
  are not written to the container's own overlay.

Registry credentials come from the same docker ``config.json`` as everywhere
(``--authfile``); a registry CA from input ``registry_ca`` (``--cert-dir``);
plain http for loopback and ``insecure_registries`` (``--tls-verify=false``).
The template's throwaway stage carries the PyPI CA and the builder's uv, as
with docker (buildah builds for the pod's own platform, which is uv's).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.build_payload import write_context
from common.installer import uv_for
from steps.builder.backends.base import BaseIdentity, BuildError, BuildPlan, error_lines, host_platform
from steps.builder.backends.image import ImageBackend
from steps.builder.registry import ImageRef, is_loopback
from steps.builder.registry.auth import config_path
from steps.builder.registry.push_errors import push_error

log = logging.getLogger(__name__)

BUILDAH = "buildah"


def in_pod(environ: Mapping[str, str]) -> bool:
    """True inside a Kubernetes pod."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) or Path("/var/run/secrets/kubernetes.io").is_dir()


def available(environ: Mapping[str, str]) -> bool:
    return shutil.which(BUILDAH, path=environ.get("PATH")) is not None


class BuildahBackend(ImageBackend):
    name = "buildah"

    def identity(self) -> BaseIdentity:
        # buildah's storage is usually empty in a fresh pod: the step asks the base image's registry.
        return BaseIdentity(platform=host_platform())

    def build(self, plan: BuildPlan) -> str:
        env = dict(self.environ)
        env.setdefault("BUILDAH_ISOLATION", "chroot")
        common = self._registry_flags()
        with tempfile.TemporaryDirectory(prefix="fuseml-build-") as folder:
            uv = uv_for(self.environ, self.settings.installer, same_platform=True)
            context = write_context(
                Path(folder) / "context", plan.spec, self.settings.pip_ca, self.settings.installer, uv, plan.kind
            )
            base_registry = ImageRef.parse(self.settings.base_image).registry
            argv = [
                BUILDAH,
                *self._global_flags(env),
                "build",
                "--layers",
                "-f",
                str(context / "Dockerfile"),
                "-t",
                plan.push_reference,
            ]
            argv += [f"--tls-verify={'false' if self._insecure(base_registry) else 'true'}", *common]
            if self.settings.no_cache:
                argv.append("--no-cache")
            for name, value in self.build_args(plan).items():
                argv += ["--build-arg", f"{name}={value}"]
            argv.append(str(context))
            log.info("=== Building %s from %s (buildah) ===", plan.push_reference, self.settings.base_image)
            started = time.monotonic()
            self._run(argv, env, "build")
            log.info("built %s in %.0fs", plan.push_reference, time.monotonic() - started)
            log.info("=== Pushing %s ===", plan.push_reference)
            digest_file = Path(folder) / "digest"
            push = [
                BUILDAH,
                *self._global_flags(env),
                "push",
                f"--tls-verify={'false' if self._insecure(self.settings.registry) else 'true'}",
            ]
            push += [*common, "--digestfile", str(digest_file), plan.push_reference, f"docker://{plan.push_reference}"]
            self._run(push, env, "push")
            digest = digest_file.read_text().strip() if digest_file.is_file() else "digest unknown"
            log.info("pushed %s (%s)", plan.push_reference, digest)
        return plan.pull_reference

    @staticmethod
    def _global_flags(env: Mapping[str, str]) -> list[str]:
        """The storage driver, given to every command: buildah push does not read STORAGE_DRIVER itself."""
        driver = env.get("STORAGE_DRIVER", "").strip()
        return ["--storage-driver", driver] if driver else []

    def _insecure(self, host: str) -> bool:
        return is_loopback(host) or host in self.settings.insecure_registries

    def _registry_flags(self) -> list[str]:
        flags: list[str] = []
        auth = config_path(self.environ)
        if auth.is_file() and "REGISTRY_AUTH_FILE" not in self.environ:
            flags += ["--authfile", str(auth)]
        if self.settings.registry_ca:
            certs = Path(tempfile.mkdtemp(prefix="fuseml-certs-"))
            shutil.copyfile(self.settings.registry_ca, certs / "ca.crt")
            flags += ["--cert-dir", str(certs)]
        return flags

    def _run(self, argv: Sequence[str], env: Mapping[str, str], what: str) -> None:
        tail: deque[str] = deque(maxlen=200)
        log.debug("running %s", " ".join(argv))
        try:
            proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        except OSError as e:
            raise BuildError(f"cannot run buildah ({e})", "install buildah or use input backend=docker/venv") from e
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            log.info("%s: %s", what, line.rstrip())
        code = proc.wait()
        if code == 0:
            return
        reason = " | ".join(error_lines(tail))
        if what == "push":
            raise push_error(argv[-2], reason, "buildah")
        hint = "see the build log above"
        if "operation not permitted" in reason.lower() or "unshare" in reason.lower():
            hint = "the pod needs root with an unconfined seccomp profile (or CAP_SYS_ADMIN): see steps/builder/README"
        raise BuildError(f"image build failed (buildah exit {code}): {reason}", hint, build_log=tail)
