"""Registry client against a small in-process registry on loopback: references,
manifest HEAD, Bearer and Basic challenges, docker config credentials, TLS with a CA."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from common.errors import InputError
from steps.builder.registry import MANIFEST_TYPES, ImageRef, RegistryClient, RegistryError, RegistryUnavailable, is_loopback
from steps.builder.registry_auth import credentials_for

DIGEST = "sha256:" + "a" * 64
USER, PASSWORD, TOKEN = "alice", "s3cret", "tok-123"


class FakeRegistry(BaseHTTPRequestHandler):
    """Serves one manifest, ``team/app:v1``; auth mode set on the server."""

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/token":
            query = parse_qs(url.query)
            self.server.token_queries.append(query)  # type: ignore[attr-defined]
            good = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != good:
                self._reply(401, body=b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                return
            self._reply(200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode())
            return
        self.do_HEAD()

    def do_HEAD(self) -> None:
        server = self.server
        server.requests.append((self.command, self.path, dict(self.headers)))  # type: ignore[attr-defined]
        mode = server.mode  # type: ignore[attr-defined]
        auth = self.headers.get("Authorization", "")
        if mode == "bearer" and auth != f"Bearer {TOKEN}":
            realm = f"{server.scheme}://127.0.0.1:{server.server_address[1]}/token"  # type: ignore[attr-defined]
            challenge = f'Bearer realm="{realm}",service="fake",scope="repository:team/app:pull"'
            self._reply(401, {"WWW-Authenticate": challenge})
            return
        if mode == "basic" and auth != "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode():
            self._reply(401, {"WWW-Authenticate": 'Basic realm="fake"'})
            return
        if mode == "forbidden":
            self._reply(403)
            return
        if self.path == "/v2/team/app/manifests/v1":
            headers = {"Content-Type": MANIFEST_TYPES[1]}
            if not server.no_digest_header:  # type: ignore[attr-defined]
                headers["Docker-Content-Digest"] = DIGEST
            self._reply(200, headers, b'{"schemaVersion":2}')
            return
        self._reply(404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')


def start(mode: str = "open", context: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    server.mode = mode  # type: ignore[attr-defined]
    server.requests = []  # type: ignore[attr-defined]
    server.token_queries = []  # type: ignore[attr-defined]
    server.no_digest_header = False  # type: ignore[attr-defined]
    server.scheme = "https" if context else "http"  # type: ignore[attr-defined]
    if context:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def registry(request: pytest.FixtureRequest) -> Iterator[ThreadingHTTPServer]:
    server = start(getattr(request, "param", "open"))
    yield server
    server.shutdown()
    server.server_close()


def host_of(server: ThreadingHTTPServer) -> str:
    return f"127.0.0.1:{server.server_address[1]}"


def docker_config(tmp_path: Path, host: str) -> dict[str, str]:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return {"DOCKER_CONFIG": str(tmp_path)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("python:3.11-slim", ImageRef("docker.io", "library/python", "3.11-slim")),
        ("127.0.0.1:5000/mlflow/trainer:abc", ImageRef("127.0.0.1:5000", "mlflow/trainer", "abc")),
        ("localhost/x", ImageRef("localhost", "x")),
        ("fuseml-local/python:3.11-bookworm", ImageRef("docker.io", "fuseml-local/python", "3.11-bookworm")),
        ("ghcr.io/a/b@" + DIGEST, ImageRef("ghcr.io", "a/b", None, DIGEST)),
    ],
)
def test_parse_references(text: str, expected: ImageRef) -> None:
    assert ImageRef.parse(text) == expected


def test_bad_references() -> None:
    for bad in ("", "UPPER/case", "a b", "x:bad tag", "reg.io/x@sha256:zz"):
        with pytest.raises(InputError):
            ImageRef.parse(bad)


def test_loopback() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("localhost") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.fuseml-registry") and not is_loopback("10.0.0.1:5000")


def test_head_found_and_missing(registry: ThreadingHTTPServer) -> None:
    client = RegistryClient(host_of(registry))
    assert client.manifest_digest("team/app", "v1") == DIGEST
    assert client.manifest_digest("team/app", "v2") is None
    method, _, headers = registry.requests[0]  # type: ignore[attr-defined]
    assert method == "HEAD"
    for media_type in MANIFEST_TYPES:
        assert media_type in headers["Accept"]


def test_digest_from_body_when_header_missing(registry: ThreadingHTTPServer) -> None:
    registry.no_digest_header = True  # type: ignore[attr-defined]
    digest = RegistryClient(host_of(registry)).manifest_digest("team/app", "v1")
    assert digest is not None and digest.startswith("sha256:") and digest != DIGEST


@pytest.mark.parametrize("registry", ["bearer"], indirect=True)
def test_bearer_challenge_with_config_credentials(registry: ThreadingHTTPServer, tmp_path: Path) -> None:
    client = RegistryClient(host_of(registry), docker_config(tmp_path, host_of(registry)))
    assert client.manifest_digest("team/app", "v1") == DIGEST
    assert client.manifest_digest("team/app", "v1") == DIGEST  # token reused
    assert len(registry.token_queries) == 1  # type: ignore[attr-defined]
    query = registry.token_queries[0]  # type: ignore[attr-defined]
    assert query["service"] == ["fake"] and query["scope"] == ["repository:team/app:pull"]


@pytest.mark.parametrize("registry", ["bearer"], indirect=True)
def test_bearer_without_credentials_says_where_to_put_them(registry: ThreadingHTTPServer, tmp_path: Path) -> None:
    client = RegistryClient(host_of(registry), {"DOCKER_CONFIG": str(tmp_path)})
    with pytest.raises(RegistryError, match=r"refused a token.*docker login"):
        client.manifest_digest("team/app", "v1")


@pytest.mark.parametrize("registry", ["basic"], indirect=True)
def test_basic_challenge(registry: ThreadingHTTPServer, tmp_path: Path) -> None:
    client = RegistryClient(host_of(registry), docker_config(tmp_path, f"http://{host_of(registry)}"))
    assert client.manifest_digest("team/app", "v1") == DIGEST


@pytest.mark.parametrize("registry", ["forbidden"], indirect=True)
def test_forbidden(registry: ThreadingHTTPServer) -> None:
    with pytest.raises(RegistryError, match="denies access"):
        RegistryClient(host_of(registry)).manifest_digest("team/app", "v1")


def test_unreachable_registry() -> None:
    with pytest.raises(RegistryUnavailable, match="does not answer"):
        RegistryClient("127.0.0.1:9", timeout=2).manifest_digest("team/app", "v1")


def test_plain_http_only_for_loopback_or_insecure() -> None:
    assert RegistryClient("127.0.0.1:5000").insecure
    assert not RegistryClient("registry.example").insecure
    assert RegistryClient("registry.example", insecure_registries=["registry.example"]).insecure


def test_tls_with_custom_ca(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = start("open", context)
    try:
        host = host_of(server)
        # Loopback, so TLS is tried first; with the CA given it is verified.
        client = RegistryClient(host, ca_file=str(cert))
        assert client.manifest_digest("team/app", "v1") == DIGEST
        assert client._scheme == "https"
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_spellings() -> None:
    auth = base64.b64encode(b"u:p").decode()
    config = {"auths": {"https://index.docker.io/v1/": {"auth": auth}, "http://reg.example/": {"auth": auth}}}
    hub = credentials_for("docker.io", config)
    assert hub is not None and hub.username == "u" and hub.password == "p"
    assert credentials_for("reg.example", config) is not None
    assert credentials_for("other.example", config) is None
    assert "p" not in repr(hub)
    with pytest.raises(InputError, match="not base64"):
        credentials_for("x.example", {"auths": {"x.example": {"auth": "!!"}}})
