"""Durable storage for nodes: a simulated disk and a file-backed one, one interface."""

from reference.disk.base import Disk, DiskError

__all__ = ["Disk", "DiskError"]
