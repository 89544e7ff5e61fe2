"""A small client of the OCI distribution API: does this image exist, and what is its digest.

The builder asks one question before building: is ``<registry>/<repository>:<tag>``
already there? That is a manifest ``HEAD`` with the Docker v2 and OCI media
types accepted. Registries answer ``401`` with a challenge: ``Bearer`` (fetch
a token from the realm, with the docker config's credentials when there are
some) or ``Basic`` (send them directly).

Transport: HTTPS, verified against the system CAs or a CA file given. Plain
HTTP only for loopback hosts and registries named insecure (like Docker's
``insecure-registries``): for those HTTPS is tried first, unverified, and HTTP
used when the server does not speak TLS.

Built on urllib (standard library) so the builder's cache-hit path stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import InputError, ServiceUnavailable, StepError
from steps.builder.registry_auth import Credentials, config_path, credentials_for, load_config

log = logging.getLogger(__name__)

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(StepError):
    """A registry refused a request (authentication, permission, bad answer)."""


class RegistryUnavailable(ServiceUnavailable):
    """A registry did not answer."""


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository:tag@digest``, with Docker's defaults made explicit."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse an image reference as docker does (``python:3.11`` is ``docker.io/library/python:3.11``)."""
        ref = text.strip()
        if not ref or any(c.isspace() for c in ref):
            raise InputError(f"{text!r} is not an image reference")
        name, _, digest = ref.partition("@")
        first, slash, rest = name.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, rest
        else:
            registry, path = DOCKER_HUB, name
        tag = None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, tag = path.rsplit(":", 1)
        if registry == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        if not re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*", path):
            raise InputError(f"{text!r}: repository {path!r} is not valid (lower-case letters, digits, . _ - /)")
        if tag is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
            raise InputError(f"{text!r}: tag {tag!r} is not valid")
        if digest and not re.fullmatch(r"[a-z0-9]+:[a-f0-9]{32,}", digest):
            raise InputError(f"{text!r}: digest {digest!r} is not valid")
        return cls(registry, path, tag, digest or None)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag (default ``latest``)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_loopback(host: str) -> bool:
    """``127.0.0.1:5000``, ``localhost``, ``[::1]:5000`` -> True."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """Talks to one registry host. Credentials come from the docker config in ``environ``."""

    def __init__(
        self,
        host: str,
        environ: Mapping[str, str] | None = None,
        ca_file: str | None = None,
        insecure_registries: Iterable[str] = (),
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.api_host = DOCKER_HUB_API if host == DOCKER_HUB else host
        self.environ = dict(environ or {})
        self.timeout = timeout
        self.insecure = is_loopback(host) or host in set(insecure_registries)
        self._credentials: Credentials | None | bool = False  # False: not looked up yet
        self._tokens: dict[str, str] = {}
        self._scheme: str | None = None
        self._context = ssl.create_default_context(cafile=ca_file or None)
        if self.insecure:
            self._context.check_hostname = False
            self._context.verify_mode = ssl.CERT_NONE

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest of ``repository:reference``, or None when the registry has no such manifest."""
        url_path = f"/v2/{repository}/manifests/{reference}"
        status, headers, _ = self._request("HEAD", url_path, repository, {"Accept": ", ".join(MANIFEST_TYPES)})
        if status == 404:
            return None
        digest = headers.get("Docker-Content-Digest")
        if digest:
            return digest
        # Some registries leave the header out on HEAD: the digest is the hash of the manifest.
        status, _, body = self._request("GET", url_path, repository, {"Accept": ", ".join(MANIFEST_TYPES)})
        return None if status == 404 else "sha256:" + hashlib.sha256(body).hexdigest()

    def exists(self, ref: ImageRef) -> bool:
        return self.manifest_digest(ref.repository, ref.reference) is not None

    # -- transport -----------------------------------------------------------------------

    def _request(self, method: str, path: str, repository: str, headers: dict[str, str]) -> tuple[int, Any, bytes]:
        """One request, answering an auth challenge once. Returns (status, headers, body); 404 is not an error."""
        scope = f"repository:{repository}:pull"
        status, answer, body = self._send(method, path, headers, self._auth_header(scope))
        if status == 401:
            challenge = answer.get("WWW-Authenticate", "")
            status, answer, body = self._send(method, path, headers, self._answer(challenge, scope))
        if status in (200, 404):
            return status, answer, body
        if status == 401:
            raise RegistryError(
                f"registry {self.host} refused the credentials for {repository} (401)",
                self._login_hint(),
            )
        if status == 403:
            raise RegistryError(f"registry {self.host} denies access to {repository} (403)", self._login_hint())
        raise RegistryError(f"registry {self.host} answered {status} to {method} {path}: {_excerpt(body)}")

    def _send(self, method: str, path: str, headers: dict[str, str], auth: str | None) -> tuple[int, Any, bytes]:
        all_headers = dict(headers)
        if auth:
            all_headers["Authorization"] = auth
        last_error: Exception | None = None
        for scheme in self._schemes():
            url = f"{scheme}://{self.api_host}{path}"
            try:
                status, answer, body = self._open(urllib.request.Request(url, method=method, headers=all_headers))
            except (ssl.SSLError, urllib.error.URLError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                if scheme == "https" and self.insecure and self._scheme is None and _is_tls_mismatch(reason):
                    log.debug("%s does not speak TLS (%s): trying http", self.host, reason)
                    last_error = e
                    continue
                raise self._unreachable(url, reason) from e
            except TimeoutError as e:
                raise self._unreachable(url, "timed out") from e
            self._scheme = scheme
            return status, answer, body
        raise self._unreachable(f"http://{self.api_host}{path}", last_error)  # pragma: no cover - loop returns

    def _schemes(self) -> list[str]:
        if self._scheme:
            return [self._scheme]
        return ["https", "http"] if self.insecure else ["https"]

    def _open(self, request: urllib.request.Request) -> tuple[int, Any, bytes]:
        handler = urllib.request.HTTPSHandler(context=self._context)
        opener = urllib.request.build_opener(handler)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read() if e.fp else b""

    def _unreachable(self, url: str, reason: object) -> RegistryUnavailable:
        hint = "check the registry name and that it is running"
        if not self.insecure:
            hint += "; a registry that speaks plain http must be named in insecure_registries"
        return RegistryUnavailable(f"registry {self.host} does not answer at {url} ({reason})", hint)

    # -- authentication ------------------------------------------------------------------

    def credentials(self) -> Credentials | None:
        if self._credentials is False:
            self._credentials = credentials_for(self.host, load_config(self.environ))
        return self._credentials  # type: ignore[return-value]

    def _auth_header(self, scope: str) -> str | None:
        if scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        return None

    def _answer(self, challenge: str, scope: str) -> str | None:
        kind, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        credentials = self.credentials()
        if kind.lower() == "basic":
            if not credentials or credentials.password is None:
                raise RegistryError(f"registry {self.host} wants a user and password", self._login_hint())
            return "Basic " + _basic(credentials.username or "", credentials.password)
        if kind.lower() != "bearer" or "realm" not in params:
            raise RegistryError(
                f"registry {self.host} sent an authentication challenge we cannot answer: {challenge!r}"
            )
        token = self._fetch_token(params, scope, credentials)
        self._tokens[scope] = token
        return f"Bearer {token}"

    def _fetch_token(self, params: dict[str, str], scope: str, credentials: Credentials | None) -> str:
        query = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        headers: dict[str, str] = {}
        if credentials and credentials.identity_token:
            # OAuth2 refresh token (docker login with an identity provider).
            query.update(grant_type="refresh_token", refresh_token=credentials.identity_token, client_id="fuseml")
        elif credentials and credentials.password is not None:
            headers["Authorization"] = "Basic " + _basic(credentials.username or "", credentials.password)
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
        try:
            status, _, body = self._open(urllib.request.Request(url, headers=headers))
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise RegistryUnavailable(f"token service {params['realm']} of {self.host} does not answer ({e})") from e
        if status != 200:
            raise RegistryError(
                f"token service of {self.host} refused a token for {query['scope']} ({status}): {_excerpt(body)}",
                self._login_hint(),
            )
        try:
            data = json.loads(body)
            return str(data.get("token") or data["access_token"])
        except (ValueError, KeyError) as e:
            raise RegistryError(f"token service of {self.host} answered without a token: {_excerpt(body)}") from e

    def _login_hint(self) -> str:
        return f"put credentials for {self.host} in {config_path(self.environ)} (docker login {self.host})"


def _basic(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def _is_tls_mismatch(reason: object) -> bool:
    text = str(reason).lower()
    return isinstance(reason, ssl.SSLError) or "wrong version number" in text or "record layer" in text


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")
