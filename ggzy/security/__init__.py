"""Security layer: cryptographic primitives behind one interface, request signing, the audit chain."""
