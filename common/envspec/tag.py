"""The image tag: a short hash of everything that decides what the image holds.

Inputs: the normalised environment (so order, whitespace and comments do not
count), the base image (its digest where known, else its name), the builder's
version (a hash of exactly the files the builder adds to the image: the
template, the Python check, ``run`` and the trainer code; see ``payload.py``)
and the platform.
Same inputs, same tag, on any machine: that is what lets a second run find the
image and skip the build.
"""

from __future__ import annotations

import hashlib
import json

from common.envspec import EnvSpec

TAG_LENGTH = 16


def environment_tag(spec: EnvSpec, base: str, builder_version: str, platform: str) -> str:
    """``<16 hex digits>``: sha256 of the canonical spec and what it is built on and with."""
    material = json.dumps(
        {
            "environment": json.loads(spec.canonical()),
            "base": base,
            "builder": builder_version,
            "platform": platform,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()[:TAG_LENGTH]
