"""A small client of the OCI distribution API: does this image exist, and what is its digest.

The builder asks one question before building: is ``<registry>/<repository>:<tag>``
already there? That is a manifest ``HEAD`` with the Docker v2 and OCI media
types accepted. Registries answer ``401`` with a challenge: ``Bearer`` (fetch
a token from the realm, with the docker config's credentials when there are
some) or ``Basic`` (send them directly).

Transport: HTTPS, verified against the system CAs plus the CA file given
(input ``registry_ca``). Plain HTTP only where Docker allows it: loopback
hosts and registries named insecure (Docker's ``insecure-registries``); for
those HTTPS is tried first and HTTP used when the server does not speak TLS.
Whose certificate is checked:

- a registry named insecure: never (that is what naming it means);
- a loopback registry: when a CA file is given (whoever hands us a CA for a
  TLS registry on 127.0.0.1 expects it to be checked), else not, as Docker;
- any other registry: always.

A certificate that fails the check is an error naming the CA file, never a
reason to fall back to HTTP.

Built on urllib (standard library) so the builder's cache-hit path stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from common.errors import InputError, ServiceUnavailable, StepError
from steps.builder.registry.auth import Credentials, config_path, credentials_for, load_config
from steps.builder.registry.reference import DOCKER_HUB, ImageRef, is_loopback

log = logging.getLogger(__name__)

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DOCKER_HUB_API = "registry-1.docker.io"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(StepError):
    """A registry refused a request (authentication, permission, bad answer)."""


class UntrustedRegistry(RegistryError):
    """A registry's TLS certificate does not verify against the system CAs and the CA file given."""


class RegistryUnavailable(ServiceUnavailable):
    """A registry did not answer."""


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
        self.ca_file = ca_file or None
        named_insecure = host in set(insecure_registries)
        # May fall back to plain http.
        self.insecure = is_loopback(host) or named_insecure
        # Checks the server's certificate (the rules in the module docstring).
        self.verify = not named_insecure and (self.ca_file is not None or not self.insecure)
        self._credentials: Credentials | None | bool = False  # False: not looked up yet
        self._tokens: dict[str, str] = {}
        self._scheme: str | None = None
        self._context = tls_context(self.ca_file, self.verify)

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
                if isinstance(reason, ssl.SSLCertVerificationError):
                    raise self._untrusted(f"registry {self.host}", reason) from e
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

    def _untrusted(self, what: str, reason: ssl.SSLCertVerificationError) -> UntrustedRegistry:
        problem = reason.verify_message or str(reason)
        if self.ca_file:
            hint = f"the CA file {self.ca_file} (input registry_ca) did not sign it: give the CA bundle that did"
        else:
            hint = "give the CA bundle that signed it as input registry_ca"
        hint += f", or name {self.host} in insecure_registries to skip the check"
        return UntrustedRegistry(f"{what}: its TLS certificate is not trusted ({problem})", hint)

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
            reason = getattr(e, "reason", e)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise self._untrusted(f"token service {params['realm']} of {self.host}", reason) from e
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


def tls_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """The system CAs plus ``ca_file`` (a private registry beside Docker Hub needs both); no check unless ``verify``."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as e:
            raise InputError(
                f"registry CA file {ca_file} cannot be used ({e})", "give a PEM CA bundle as input registry_ca"
            ) from e
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _basic(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def _is_tls_mismatch(reason: object) -> bool:
    text = str(reason).lower()
    return isinstance(reason, ssl.SSLError) or "wrong version number" in text or "record layer" in text


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")
