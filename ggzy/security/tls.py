"""TLS for the services' own listeners (the node's local API; the hub serves the same way).

TLS 1.2 is the floor: the server context refuses older protocol versions explicitly rather than by
relying on the OpenSSL build's defaults. A client CA turns on mutual TLS (client certificates
required), for provincial systems that push to the node's API.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["TlsConfigError", "server_tls_options"]


class TlsConfigError(ValueError):
    code = "E-CONFIG-TLS"


def server_tls_options(cert: Path | None, key: Path | None, client_ca: Path | None) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``: empty (plain HTTP) when no certificate is configured."""
    if cert is None and key is None:
        if client_ca is not None:
            raise TlsConfigError("a client CA needs a server certificate and key as well")
        return {}
    if cert is None or key is None:
        raise TlsConfigError("TLS needs both the certificate and its private key")
    for path in (cert, key, client_ca):
        if path is not None and not path.is_file():
            raise TlsConfigError(f"TLS file not found: {path}")
    return {
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_ca_certs": str(client_ca) if client_ca else None,
        "ssl_cert_reqs": ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
        "ssl_version": ssl.PROTOCOL_TLS_SERVER,
        "ssl_context_factory": _tls12_floor,
    }


def _tls12_floor(_config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
