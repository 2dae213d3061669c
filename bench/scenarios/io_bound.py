"""placeholder"""
from bench.context import Context


def run(ctx: Context) -> None:
    raise NotImplementedError


run_idle_in_tx = run_active_readers = run
