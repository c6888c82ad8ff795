"""TLS on the node's local API (``node.api_tls_cert``/``api_tls_key``), TLS 1.2 as the floor, and
mutual TLS (``node.api_tls_client_ca``), served for real by what ``ggzy node run`` plugs in."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ggzy.node.context import NodeContext, build_context
from ggzy.node.intake import plug
from ggzy.settings import NodeSettings


def _issue(
    subject: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, usage: Any
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _write(
    folder: Path, name: str, pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    cert.write_bytes(pair[0].public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        pair[1].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("node-pki")
    ca = _issue("ggzy node test CA", None, None)
    ca_cert, _ = _write(folder, "ca", ca)
    server_cert, server_key = _write(
        folder, "server", _issue("127.0.0.1", ca, ExtendedKeyUsageOID.SERVER_AUTH)
    )
    client_cert, client_key = _write(
        folder, "client", _issue("platform", ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    )
    return {
        "ca": ca_cert,
        "cert": server_cert,
        "key": server_key,
        "client_cert": client_cert,
        "client_key": client_key,
    }


class _Service:
    """What ``plug`` uses of ``NodeService``: the servers it adds are started here in threads."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.components: dict[str, Any] = {}
        self.servers: list[Any] = []
        self.stopping = False

    def add_server(self, _name: str, server: Any) -> None:
        self.servers.append(server)

    def add_task(self, *_args: Any) -> None:
        pass

    def add_daily_task(self, *_args: Any) -> None:
        pass

    def notify(self, _channel: int) -> None:
        pass


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(tmp_path: Path, pki: dict[str, Path], *, mutual: bool) -> Iterator[str]:
    port = _free_port()
    settings = NodeSettings(
        db_url=f"sqlite:///{tmp_path / 'node.db'}",
        key_file=tmp_path / "keys" / "node.key",
        drop_dir=None,
        api_port=port,
        api_tls_cert=pki["cert"],
        api_tls_key=pki["key"],
        api_tls_client_ca=pki["ca"] if mutual else None,
    )
    ctx = build_context(settings, key=b"\x07" * 32)
    service = _Service(ctx)
    plug(service)  # type: ignore[arg-type]
    (server,) = service.servers
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "intake API did not start"
            time.sleep(0.05)
        yield f"https://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ctx.engine.dispose()


def _client_context(
    pki: dict[str, Path], *, certificate: bool = False, tweak: Callable[[ssl.SSLContext], None] | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if certificate:
        context.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
    if tweak:
        tweak(context)
    return context


def test_the_local_api_speaks_tls_12_or_newer_only(tmp_path: Path, pki: dict[str, Path]) -> None:
    for base in _serve(tmp_path, pki, mutual=False):
        assert httpx.get(f"{base}/healthz", verify=_client_context(pki), timeout=5).status_code == 200
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
            httpx.get(base.replace("https://", "http://") + "/healthz", timeout=5)

        def tls11(context: ssl.SSLContext) -> None:
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                context.maximum_version = ssl.TLSVersion.TLSv1_1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")

        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{base}/healthz", verify=_client_context(pki, tweak=tls11), timeout=5)


def test_mutual_tls_requires_a_client_certificate(tmp_path: Path, pki: dict[str, Path]) -> None:
    for base in _serve(tmp_path, pki, mutual=True):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{base}/healthz", verify=_client_context(pki), timeout=5)
        answer = httpx.get(f"{base}/healthz", verify=_client_context(pki, certificate=True), timeout=5)
        assert answer.status_code == 200


def test_the_server_context_sets_the_tls_12_floor_itself(pki: dict[str, Path]) -> None:
    # The handshake test above passes on this OpenSSL build even without the explicit floor (its
    # default security level already refuses TLS 1.1); this check fails if the floor is removed.
    from ggzy.security.tls import TlsConfigError, server_tls_options

    options = server_tls_options(pki["cert"], pki["key"], None)
    context = options["ssl_context_factory"](None, lambda: ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_tls_options(None, None, None) == {}
    with pytest.raises(TlsConfigError):
        server_tls_options(pki["cert"], None, None)
