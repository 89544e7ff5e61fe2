"""Registry credentials, found where ``docker login`` and Kubernetes put them.

A docker ``config.json`` (in ``$DOCKER_CONFIG``, else ``~/.docker``; a
Kubernetes ``dockerconfigjson`` secret mounted there has the same shape) maps
registry hosts to credentials: ``auth`` (base64 ``user:password``),
``username``/``password``, or ``identitytoken``; ``credHelpers`` and
``credsStore`` name a ``docker-credential-<helper>`` program to ask instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import InputError

log = logging.getLogger(__name__)

DOCKER_CONFIG = "DOCKER_CONFIG"
REGISTRY_AUTH_FILE = "REGISTRY_AUTH_FILE"
DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    """What to answer a registry's challenge with."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None

    def __repr__(self) -> str:  # never show secrets, even in a debugger
        return f"Credentials(username={self.username!r})"


def config_path(environ: Mapping[str, str]) -> Path:
    """Where the docker config is: ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    folder = environ.get(DOCKER_CONFIG, "").strip()
    if folder:
        return Path(folder) / "config.json"
    return Path(environ.get("HOME") or os.path.expanduser("~")) / ".docker" / "config.json"


def load_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """The docker config as a dict, ``{}`` when there is none."""
    path = config_path(environ)
    if not path.is_file():
        log.debug("no docker config at %s: registries are used anonymously", path)
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(
            f"docker config {path} cannot be read ({e})", f"fix it or point {DOCKER_CONFIG} elsewhere"
        ) from e
    if not isinstance(data, dict):
        raise InputError(f"docker config {path} is not a JSON object", f"fix it or point {DOCKER_CONFIG} elsewhere")
    return data


def credentials_for(host: str, config: Mapping[str, Any]) -> Credentials | None:
    """The credentials the config holds for registry ``host``, if any."""
    keys = _keys_for(host)
    helpers = config.get("credHelpers") or {}
    for key in keys:
        if key in helpers:
            return _from_helper(str(helpers[key]), key)
    auths = config.get("auths") or {}
    for entry_key, entry in auths.items():
        if _host_of(entry_key) in {_host_of(k) for k in keys} and isinstance(entry, dict):
            found = _from_entry(entry, entry_key)
            if found:
                return found
    store = config.get("credsStore")
    if store:
        for key in keys:
            found = _from_helper(str(store), key, missing_ok=True)
            if found:
                return found
    return None


def _keys_for(host: str) -> list[str]:
    if host in DOCKER_HUB_HOSTS:
        return [DOCKER_HUB_KEY, *DOCKER_HUB_HOSTS]
    return [host, f"https://{host}", f"http://{host}"]


def _host_of(key: str) -> str:
    """``https://host/v1/`` -> ``host``, so config keys in any spelling match."""
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


def _from_entry(entry: Mapping[str, Any], key: str) -> Credentials | None:
    if entry.get("identitytoken"):
        return Credentials(username=entry.get("username"), identity_token=str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise InputError(f"docker config: the 'auth' of {key} is not base64 of user:password") from e
        username, sep, password = decoded.partition(":")
        if not sep:
            raise InputError(f"docker config: the 'auth' of {key} is not base64 of user:password")
        return Credentials(username=username, password=password)
    if entry.get("username") and entry.get("password"):
        return Credentials(username=str(entry["username"]), password=str(entry["password"]))
    return None


def _from_helper(helper: str, key: str, missing_ok: bool = False) -> Credentials | None:
    """Ask ``docker-credential-<helper> get`` (the docker credential helper protocol)."""
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run([program, "get"], input=key, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError as e:
        if missing_ok:
            return None
        raise InputError(f"docker config names credential helper {helper!r} but {program} is not on PATH") from e
    except subprocess.TimeoutExpired as e:
        raise InputError(f"credential helper {program} did not answer within 30s") from e
    if done.returncode != 0:
        if missing_ok or "credentials not found" in done.stdout + done.stderr:
            return None
        raise InputError(f"credential helper {program} failed for {key}: {done.stderr.strip() or done.stdout.strip()}")
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError as e:
        raise InputError(f"credential helper {program} answered something that is not JSON") from e
    if data.get("Username") == "<token>":
        return Credentials(identity_token=data.get("Secret"))
    return Credentials(username=data.get("Username"), password=data.get("Secret"))
