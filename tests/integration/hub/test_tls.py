"""TLS on the hub (``hub.tls_cert``/``tls_key``) and mutual TLS (``hub.tls_client_ca``), for real.

A certificate authority, a server certificate for 127.0.0.1 and a client certificate are made in
the test; ``ggzy hub serve`` runs in a child process with them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hubproc import free_port, node_records, prepare_database, register_node

from ggzy.protocol import HubClient, HubUnavailable


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _issue(
    subject: str,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key or key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_key = _issue("ggzy test CA", None, None, server=False)
    server, server_key = _issue("127.0.0.1", ca, ca_key, server=True)
    client, client_key = _issue("fj-01", ca, ca_key, server=False)
    ca_cert, _ = _write(folder / "ca", ca, ca_key)
    server_cert, server_key_path = _write(folder / "server", server, server_key)
    client_cert, client_key_path = _write(folder / "client", client, client_key)
    return {
        "ca": ca_cert,
        "server_cert": server_cert,
        "server_key": server_key_path,
        "client_cert": client_cert,
        "client_key": client_key_path,
    }


def _serve(tmp_path: Path, pki: dict[str, Path], *, mutual: bool) -> Iterator[tuple[str, str, bytes]]:
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    key_dir = tmp_path / "keys"
    prepare_database(db_url, key_dir)
    node = register_node(db_url, "fj-01", "35", seed=1)
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
    environment.update(
        GGZY_HUB__DB_URL=db_url,
        GGZY_HUB__KEY_DIR=str(key_dir),
        GGZY_HUB__TLS_CERT=str(pki["server_cert"]),
        GGZY_HUB__TLS_KEY=str(pki["server_key"]),
    )
    if mutual:
        environment["GGZY_HUB__TLS_CLIENT_CA"] = str(pki["ca"])
    log = (tmp_path / "hub.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ggzy.cli", "hub", "serve", "--port", str(port)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if mutual:
        context.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", verify=context, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((tmp_path / "hub.log").read_text(errors="replace")) from None
                time.sleep(0.2)
        yield base, db_url, bytes.fromhex(node.key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_hub_serves_tls_and_a_node_uploads_over_it(tmp_path: Path, pki: dict[str, Path]) -> None:
    for base, _db, key in _serve(tmp_path, pki, mutual=False):
        records = node_records("35", 1, transactions=1)
        with HubClient(
            base, "fj-01", key, verify=ssl.create_default_context(cafile=str(pki["ca"]))
        ) as client:
            receipt = client.upload(2, "tls-1", records)
        assert receipt["accepted"] == len(records)
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
            httpx.get(base.replace("https://", "http://") + "/healthz", timeout=2)


def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path: Path, pki: dict[str, Path]) -> None:
    for base, _db, key in _serve(tmp_path, pki, mutual=True):
        no_client_cert = ssl.create_default_context(cafile=str(pki["ca"]))
        with HubClient(base, "fj-01", key, verify=no_client_cert) as client, pytest.raises(HubUnavailable):
            client.feedback()
        with_cert = ssl.create_default_context(cafile=str(pki["ca"]))
        with_cert.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
        with HubClient(base, "fj-01", key, verify=with_cert) as client:
            assert client.feedback()["items"] == []
