"""``python -m app.intake``: the intake under uvicorn, ``INTAKE_WORKERS`` processes.

With several workers, Prometheus runs multi-process: each worker writes its metrics to a
shared directory (``PROMETHEUS_MULTIPROC_DIR``, made here if unset, before any worker
starts) and ``/metrics`` sums them. uvicorn's access log is off: it would print endpoint
tokens from request paths; the intake logs each request itself, without them.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile


def main() -> int:
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="pgjobs-intake-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    import uvicorn

    from app.intake.settings import IntakeSettings

    settings = IntakeSettings.from_env()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        uvicorn.run(
            "app.intake.app:create_app", factory=True, host=settings.host, port=settings.port,
            workers=settings.workers, access_log=False, log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=5, lifespan="on",
        )
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
