"""The systems under test, one adapter module each, behind :class:`base.System`."""

from __future__ import annotations

from bench.systems.base import System


def all_systems() -> list[System]:
    """Every system, ours first (it is the one the ratios are about)."""
    from bench.systems.ours import Ours
    from bench.systems.pgqueuer_sys import PgQueuerSystem
    from bench.systems.procrastinate_sys import ProcrastinateSystem
    from bench.systems.stock import Stock

    return [Ours(), Stock(), PgQueuerSystem(), ProcrastinateSystem()]
