"""Simulated provincial uploads: whole transactions of every trading domain, with optional defects.

The public entry point is :func:`simulate`; ``ggzy simulate`` is its command line.
"""

from ggzy.simulate.defects import CONSEQUENCES, DEFECT_KINDS, ExpectedFinding
from ggzy.simulate.generator import SimulatedRecord, province_systems, simulate
from ggzy.simulate.values import ProvinceSystems

__all__ = [
    "CONSEQUENCES",
    "DEFECT_KINDS",
    "ExpectedFinding",
    "ProvinceSystems",
    "SimulatedRecord",
    "province_systems",
    "simulate",
]
