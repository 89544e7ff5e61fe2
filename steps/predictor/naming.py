"""Kubernetes-safe application names.

The app name becomes the InferenceService name (a DNS-1035 label: lower-case
letters, digits and ``-``, starting with a letter) and the prefix of the Secret
and ServiceAccount names, and appears in the prediction URL. KServe derives
longer names from it (``<name>-predictor-...``), so it is kept well under 63.
"""

from __future__ import annotations

import hashlib
import re

from common import names
from common.errors import InputError

MAX_APP_NAME = 45
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def dns_name(raw: str, source: str) -> str:
    """``raw`` as a DNS-1035 label of at most ``MAX_APP_NAME`` characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", raw.strip().lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")
    name = name.lstrip("0123456789-")
    if not name:
        raise InputError(f"{source}: {raw!r} gives an empty application name", "use letters, digits and '-'")
    if len(name) > MAX_APP_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        name = name[: MAX_APP_NAME - 7].rstrip("-") + "-" + digest
    return name


def checked_app_name(app: str) -> str:
    """``app`` if it is a DNS label, as every name ``dns_name`` makes is; else an InputError.

    For names given by hand (``fuseml-steps apps stop NAME``), which become file names.
    """
    if not DNS_LABEL.fullmatch(app):
        raise InputError(
            f"{app!r} is not an application name",
            "application names are lower-case letters, digits and '-', starting with a letter",
        )
    return app


def default_app_name(org: str | None, project: str | None, workflow: str | None) -> str:
    """``<org>-<project>-<workflow>``, from what is known of the three."""
    parts = [p for p in (org, project, workflow) if p]
    if not parts:
        raise InputError(
            "no application name: app_name is unset, the codeset has no .fuseml/_org or .fuseml/_project, "
            f"and {names.WORKFLOW_NAME} is unset",
            "set FUSEML_APP_NAME",
        )
    return dns_name("-".join(parts), "application name from codeset and workflow")
