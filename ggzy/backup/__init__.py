"""Verified backups of the hub's or a node's database (Art. 21): create, verify, restore, prune."""
