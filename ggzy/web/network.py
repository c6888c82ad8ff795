"""Source-address allow-list of the management interface (等保三级 8.1.4.4 c).

The address is the peer of the connection as the server saw it (``ggzy hub serve`` lets uvicorn
replace it from ``X-Forwarded-For`` only for its trusted proxies). Anything that is not an IP
address in one of the listed networks is refused: the check fails closed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from fastapi import Request

__all__ = ["AllowList", "source_of"]


def source_of(request: Request) -> str:
    return request.client.host if request.client else "-"


class AllowList:
    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def admits(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)
