"""The images we publish, read from ``images.yaml``, and the labels every build of them carries.

``make images`` (BuildKit, here), ``make release`` (buildah, ``tools/release.py``)
and the release workflow (``docker/metadata-action``) must produce images that
say the same thing about themselves, so the names, Dockerfiles and label values
come from this one file and these few functions, never from a second list.

CLI (``python -m tools.images``):

- ``build [--images NAMES] [--base-image IMG] [--prefix P] [--version V]``: build with BuildKit, labelled;
- ``matrix``: the images as the JSON list the release workflow's build matrix reads;
- ``platforms``: the platforms every image is released for, comma separated (Buildx's form);
- ``labels NAME [--version V]``: the labels one image gets, one ``key=value`` a line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "images.yaml"
DOCKER = "/usr/bin/docker"
OCI = "org.opencontainers.image"


class ImagesError(Exception):
    """``images.yaml`` or a build of its images is wrong; the message says which entry and what to do."""


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: str
    context: str
    title: str
    description: str


@dataclass(frozen=True)
class Manifest:
    registry: str
    version: str
    source: str
    licenses: str
    platforms: tuple[str, ...]
    images: tuple[Image, ...]

    def select(self, names: Sequence[str] | None) -> list[Image]:
        """The images named (all when none are), in the file's order; an unknown name lists the known ones."""
        if not names:
            return list(self.images)
        known = {image.name: image for image in self.images}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ImagesError(f"{MANIFEST.name}: no image {', '.join(unknown)}; known: {', '.join(known)}")
        return [known[name] for name in names]


def load(path: Path = MANIFEST) -> Manifest:
    try:
        data = yaml.safe_load(path.read_text())
        images = tuple(
            Image(
                name=str(entry["name"]),
                dockerfile=str(entry["dockerfile"]),
                context=str(entry["context"]),
                title=str(entry["title"]),
                description=str(entry["description"]),
            )
            for entry in data["images"]
        )
        manifest = Manifest(
            registry=str(data["registry"]),
            version=str(data["version"]),
            source=str(data["source"]),
            licenses=str(data["licenses"]),
            platforms=tuple(str(p) for p in data["platforms"]),
            images=images,
        )
    except (OSError, yaml.YAMLError) as e:
        raise ImagesError(f"cannot read {path}: {e}") from e
    except (KeyError, TypeError) as e:
        raise ImagesError(f"{path}: missing or malformed field {e}; see the comment at the top of the file") from e
    for image in manifest.images:
        for field in ("dockerfile", "context"):
            if not (path.parent / getattr(image, field)).exists():
                raise ImagesError(f"{path}: image {image.name}: {field} {getattr(image, field)} does not exist")
    return manifest


def git_revision(root: Path = ROOT) -> str:
    """The commit the images are built from; empty outside a git checkout (the label is then empty too)."""
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def created_now() -> str:
    """RFC 3339 build time, or ``SOURCE_DATE_EPOCH``'s when set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.datetime.fromtimestamp(int(epoch), datetime.UTC) if epoch else datetime.datetime.now(datetime.UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def labels(manifest: Manifest, image: Image, version: str, revision: str, created: str) -> dict[str, str]:
    """The OCI labels of one image: the same keys ``docker/metadata-action`` writes in the release workflow."""
    return {
        f"{OCI}.title": image.title,
        f"{OCI}.description": image.description,
        f"{OCI}.source": manifest.source,
        f"{OCI}.licenses": manifest.licenses,
        f"{OCI}.version": version,
        f"{OCI}.revision": revision,
        f"{OCI}.created": created,
    }


def label_args(values: Mapping[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--label", f"{key}={value}")]


def build_with_docker(
    manifest: Manifest,
    images: Sequence[Image],
    prefix: str,
    version: str,
    base_image: str,
    pip_ca: Path | None,
) -> list[str]:
    """Build ``images`` with BuildKit as ``<prefix>/<name>:<version>``, labelled; the tags built."""
    revision, created = git_revision(), created_now()
    tags = []
    for image in images:
        tag = f"{prefix}/{image.name}:{version}"
        print(f"=== {tag} from {image.dockerfile} ===", file=sys.stderr, flush=True)
        secret = ["--secret", f"id=pip_ca,src={pip_ca}"] if pip_ca and pip_ca.exists() else []
        argv = [
            DOCKER, "build", "-f", str(ROOT / image.dockerfile), "--build-arg", f"BASE_IMAGE={base_image}",
            *secret, *label_args(labels(manifest, image, version, revision, created)), "-t", tag,
            str(ROOT / image.context),
        ]  # fmt: skip
        if subprocess.run(argv, env={**os.environ, "DOCKER_BUILDKIT": "1"}, check=False).returncode != 0:
            raise ImagesError(f"docker build of {image.name} ({image.dockerfile}) failed; its log is above")
        tags.append(tag)
    return tags


def matrix(manifest: Manifest) -> str:
    """The workflow's build matrix: one entry per image, with what metadata-action needs for its labels."""
    return json.dumps(
        [
            {
                "name": image.name,
                "dockerfile": image.dockerfile,
                "context": image.context,
                "title": image.title,
                "description": image.description,
                "licenses": manifest.licenses,
            }
            for image in manifest.images
        ]
    )


def _names(value: str | None) -> list[str]:
    return [name for name in (value or "").replace(",", " ").split() if name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.images", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the images with BuildKit (make images)")
    build.add_argument("--images", help="names, comma or space separated (default: all)")
    build.add_argument("--base-image", default="python:3.11-slim", help="FROM image (default: %(default)s)")
    build.add_argument("--prefix", help="repository prefix (default: images.yaml's registry)")
    build.add_argument("--version", help="tag (default: images.yaml's version)")
    build.add_argument("--pip-ca", type=Path, help="CA bundle pip needs, passed as the build secret pip_ca")
    commands.add_parser("matrix", help="the release workflow's build matrix as JSON")
    commands.add_parser("platforms", help="the release platforms, comma separated")
    show = commands.add_parser("labels", help="the labels one image gets")
    show.add_argument("name")
    show.add_argument("--version", help="default: images.yaml's version")
    args = parser.parse_args(argv)
    try:
        manifest = load()
        if args.command == "matrix":
            print(matrix(manifest))
        elif args.command == "platforms":
            print(",".join(manifest.platforms))
        elif args.command == "labels":
            (image,) = manifest.select([args.name])
            values = labels(manifest, image, args.version or manifest.version, git_revision(), created_now())
            print("\n".join(f"{key}={value}" for key, value in values.items()))
        else:
            images = manifest.select(_names(args.images))
            prefix, version = args.prefix or manifest.registry, args.version or manifest.version
            for tag in build_with_docker(manifest, images, prefix, version, args.base_image, args.pip_ca):
                print(tag)
    except ImagesError as e:
        print(f"images: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
