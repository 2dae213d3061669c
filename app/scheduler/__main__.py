"""``python -m app.scheduler``: run a scheduler process (leader or standby) until SIGTERM."""

from __future__ import annotations

import logging
import os
import signal

from app.scheduler.service import SchedulerService


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("SCHEDULER_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        service = SchedulerService()  # refuses a pooled URL for its lock (DirectUrlRequired)
        actors = service.load_actors()
    except (ImportError, ValueError) as exc:
        # A user module missing, or a recurring task refused at its declaration: nothing
        # would fire as declared, so the process does not start.
        logging.getLogger(__name__).error("event=scheduler_not_started error=%s", exc)
        return 2
    logging.getLogger(__name__).info("event=actors_loaded actors=%d", len(actors))

    def stop(signum: int, _frame: object) -> None:
        logging.getLogger(__name__).info("event=stopping signal=%s", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
