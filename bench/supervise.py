"""``python -m bench.supervise -- CMD...``: restart a worker command whenever it exits.

What systemd's ``Restart=always`` or a container's restart policy gives a deployment, for the
peers whose documentation leaves restarting to the process manager (procrastinate's
maintainers: "the role of ... the process supervisor (systemd, kubernetes, ...)",
procrastinate-org/procrastinate#1116). The child stays in the supervisor's process group,
so the bench's ``killpg`` (a dead host or container) still takes both down.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

RESTART_DELAY_S = 1.0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m bench.supervise -- CMD...", file=sys.stderr)
        return 2
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, frame: object) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)
            child.wait()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        child = subprocess.Popen(argv)
        code = child.wait()
        print(f"supervise: worker exited with {code}; restarting in {RESTART_DELAY_S:g}s",
              file=sys.stderr, flush=True)
        time.sleep(RESTART_DELAY_S)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
