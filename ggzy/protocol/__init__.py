"""The node ↔ hub exchange protocol as a client library (``docs/protocol.md`` is its description).

The node talks to the hub only through this client; tests and benchmarks use it too.
"""

from ggzy.protocol.client import HubClient, HubRefused, HubUnavailable, SignedAuth

__all__ = ["HubClient", "HubRefused", "HubUnavailable", "SignedAuth"]
