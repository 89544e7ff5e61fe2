"""Registry client against a small in-process registry on loopback: references,
manifest HEAD, Bearer and Basic challenges, docker config credentials, and TLS: a registry
on 127.0.0.1 with a certificate from a CA made here, verified when a CA file is given."""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.errors import InputError
from steps.builder.registry import (
    MANIFEST_TYPES,
    ImageRef,
    RegistryClient,
    RegistryError,
    RegistryUnavailable,
    UntrustedRegistry,
    is_loopback,
)
from steps.builder.registry.auth import credentials_for

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


def test_who_is_verified(tmp_path: Path) -> None:
    ca = write_ca(tmp_path, "ca.pem")
    assert RegistryClient("registry.example").verify
    assert RegistryClient("registry.example", ca_file=str(ca)).verify
    assert not RegistryClient("127.0.0.1:5000").verify, "loopback without a CA: unverified, as Docker"
    assert RegistryClient("127.0.0.1:5000", ca_file=str(ca)).verify, "loopback with a CA: verified"
    named = RegistryClient("127.0.0.1:5000", ca_file=str(ca), insecure_registries=["127.0.0.1:5000"])
    assert not named.verify, "a registry named insecure is never verified"


@dataclass(frozen=True)
class TlsRegistry:
    """An HTTPS registry on 127.0.0.1 whose certificate ``ca`` signed; ``other_ca`` signed nothing of it."""

    server: ThreadingHTTPServer
    ca: Path
    other_ca: Path

    @property
    def host(self) -> str:
        return host_of(self.server)


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[TlsRegistry]:
    ca_key, ca_cert = certificate_authority("fuseml test CA")
    other_key, other_cert = certificate_authority("fuseml other CA")
    key, cert = server_certificate(ca_key, ca_cert, "127.0.0.1")
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "other-ca.pem").write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    server = start("open", context)
    yield TlsRegistry(server, tmp_path / "ca.pem", tmp_path / "other-ca.pem")
    server.shutdown()
    server.server_close()


def test_tls_on_loopback_is_verified_with_the_right_ca(tls_registry: TlsRegistry) -> None:
    client = RegistryClient(tls_registry.host, ca_file=str(tls_registry.ca))
    assert client.manifest_digest("team/app", "v1") == DIGEST
    assert client._scheme == "https"
    assert tls_registry.server.requests, "the request reached the registry over TLS"  # type: ignore[attr-defined]


def test_tls_on_loopback_with_a_wrong_ca_fails_clearly(tls_registry: TlsRegistry) -> None:
    client = RegistryClient(tls_registry.host, ca_file=str(tls_registry.other_ca))
    with pytest.raises(UntrustedRegistry) as caught:
        client.manifest_digest("team/app", "v1")
    message = str(caught.value)
    assert f"registry {tls_registry.host}: its TLS certificate is not trusted (unable to get local issuer" in message
    assert caught.value.hint is not None and str(tls_registry.other_ca) in caught.value.hint
    assert "registry_ca" in caught.value.hint
    assert tls_registry.server.requests == [], "no request got past the handshake"  # type: ignore[attr-defined]


def test_tls_on_loopback_without_a_ca_or_named_insecure_is_not_verified(tls_registry: TlsRegistry) -> None:
    assert RegistryClient(tls_registry.host).manifest_digest("team/app", "v1") == DIGEST
    named = RegistryClient(
        tls_registry.host, ca_file=str(tls_registry.other_ca), insecure_registries=[tls_registry.host]
    )
    assert named.manifest_digest("team/app", "v1") == DIGEST


def test_plain_http_loopback_registry_still_answers_when_a_ca_is_given(
    registry: ThreadingHTTPServer, tmp_path: Path
) -> None:
    client = RegistryClient(host_of(registry), ca_file=str(write_ca(tmp_path, "ca.pem")))
    assert client.manifest_digest("team/app", "v1") == DIGEST
    assert client._scheme == "http"


def test_unusable_ca_file_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(InputError, match=f"registry CA file {bad} cannot be used"):
        RegistryClient("registry.example", ca_file=str(bad))


def certificate_authority(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA certificate valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def server_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, ip: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate for ``ip``, signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def write_ca(folder: Path, name: str) -> Path:
    """A CA certificate file (of a CA that signed nothing)."""
    path = folder / name
    path.write_bytes(certificate_authority("fuseml unused CA")[1].public_bytes(serialization.Encoding.PEM))
    return path


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
