"""``python -m bench.intake``: webhook acknowledgement latency under an open-loop load.

Requests are sent at a fixed rate whatever the replies (open loop: a slow answer does not
slow the sender, so queueing shows up in the latencies instead of hiding), each signed, each
a new event. Latency is measured from the moment a request was due to be sent to its
answer. Systems: the intake (``python -m app.intake``, 2 uvicorn workers: verify, store the
event and its job in one transaction, 202) and a bare Starlette endpoint committing one row
(``bench.intake_ref``), the reference. Both run against a fresh migrated database.

    python -m bench.intake                       # 200 and 500 requests/s, 10 s each
    python -m bench.intake --rates 200 --seconds 3   # a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from bench.dbadmin import Databases, admin_url
from bench.procs import REPO

RESULTS = REPO / "bench" / "results"


@dataclass
class Run:
    system: str
    rate: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    wall_s: float = 0.0

    def pct(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, object]:
        return {"system": self.system, "rate": self.rate, "sent": self.sent,
                "answered": len(self.latencies_ms), "errors": self.errors,
                "achieved_rps": round(self.sent / self.wall_s, 1) if self.wall_s else None,
                "p50_ms": _r(self.pct(0.50)), "p99_ms": _r(self.pct(0.99)),
                "max_ms": _r(max(self.latencies_ms) if self.latencies_ms else None),
                "mean_ms": _r(statistics.fmean(self.latencies_ms)
                              if self.latencies_ms else None)}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the open-loop client: raw HTTP/1.1 on keep-alive connections ---------------------------

Conns = list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]


async def _exchange(conns: Conns, port: int, request: bytes) -> int:
    """One request; on a kept-alive connection the server closed meanwhile (uvicorn closes
    those idle for 5 s), once more on a new connection, as HTTP clients do."""
    if conns:
        reader, writer = conns.pop()
        try:
            return await _send(conns, reader, writer, request)
        except (OSError, asyncio.IncompleteReadError):
            writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return await _send(conns, reader, writer, request)


async def _send(conns: Conns, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                request: bytes) -> int:
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    conns.append((reader, writer))
    return int(status_line.split()[1])


async def open_loop(port: int, requests: list[bytes], rate: int, warmup: int,
                    run: Run) -> None:
    conns: Conns = []
    loop = asyncio.get_running_loop()
    tasks = []
    start = loop.time() + 0.1

    async def one(i: int, due: float) -> None:
        try:
            status = await _exchange(conns, port, requests[i])
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            run.errors[type(exc).__name__] = run.errors.get(type(exc).__name__, 0) + 1
            return
        if i < warmup:
            return
        if status != 202:
            run.errors[str(status)] = run.errors.get(str(status), 0) + 1
        run.latencies_ms.append((loop.time() - due) * 1000)

    for i in range(len(requests)):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    run.sent = len(requests) - warmup
    run.wall_s = (len(requests) - warmup) / rate
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    for _, writer in conns:
        writer.close()


def build_requests(path: str, secret: str | None, n: int, tag: str) -> list[bytes]:
    from app.intake.signatures import sign_hex

    out = []
    for i in range(n):
        body = json.dumps({"event_id": f"{tag}-{i}", "event_type": "bench.ping",
                           "order": {"id": i, "total": "19.90", "items": [1, 2, 3]}}).encode()
        headers = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1",
                   "Content-Type: application/json", f"Content-Length: {len(body)}"]
        if secret:
            headers.append(f"X-Webhook-Signature: {sign_hex(secret, body)}")
        out.append(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
    return out


# --- processes ------------------------------------------------------------------------------

def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server not up after {timeout}s")


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(REPO / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__)
    parser.add_argument("--rates", default="200,500", help="requests/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per rate")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    parser.add_argument("--systems", default="intake,reference")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",") if r]
    systems = [s for s in args.systems.split(",") if s]

    dbs = Databases(admin_url())
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-intake-{uuid.uuid4().hex[:6]}"
    logs.mkdir(parents=True)
    runs: list[Run] = []
    try:
        url = dbs.create("bench_intake")
        migrate(url)
        os.environ["DATABASE_URL"] = url
        from app.config import get_settings

        get_settings.cache_clear()
        from app.intake import admin

        with psycopg.connect(url, autocommit=True) as conn:
            tenant = conn.execute("INSERT INTO tenants (name) VALUES ('bench') RETURNING id"
                                  ).fetchone()[0]  # type: ignore[index]
            from bench.intake_ref import TABLE

            conn.execute(TABLE)
        endpoint = admin.add_endpoint(tenant, "test")
        secret = admin.add_secret(tenant, endpoint.endpoint_id).value
        env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1",
               "INTAKE_LOG_LEVEL": "WARNING", "INTAKE_WORKERS": str(args.workers)}
        for system in systems:
            port = free_port()
            log = logs / f"{system}.log"
            if system == "intake":
                proc = start([sys.executable, "-m", "app.intake"],
                             {**env, "INTAKE_PORT": str(port)}, log)
                probe, path, key = f"http://127.0.0.1:{port}/healthz", \
                    f"/webhooks/test/{endpoint.token}", secret
            else:
                app_url = get_settings().app_database_url
                proc = start([sys.executable, "-m", "uvicorn", "--factory",
                              "bench.intake_ref:create_app", "--port", str(port),
                              "--workers", str(args.workers), "--no-access-log",
                              "--log-level", "warning"], {**env, "BENCH_REF_URL": app_url}, log)
                probe, path, key = f"http://127.0.0.1:{port}/ref", "/ref", None
            try:
                wait_http(probe, proc, log)
                for rate in rates:
                    warmup = rate  # one second at the rate, not measured
                    n = warmup + int(rate * args.seconds)
                    requests = build_requests(path, key, n, f"{system}-{rate}-{uuid.uuid4().hex}")
                    run = Run(system, rate)
                    asyncio.run(open_loop(port, requests, rate, warmup, run))
                    runs.append(run)
                    print(json.dumps(run.summary()), flush=True)
            finally:
                stop(proc)
    finally:
        dbs.drop_all()
    print()
    print(f"{'system':<10} {'rate':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}")
    for run in runs:
        s = run.summary()
        print(f"{run.system:<10} {run.rate:>5} {s['p50_ms']!s:>8} {s['p99_ms']!s:>8} "
              f"{s['max_ms']!s:>8} {sum(run.errors.values()):>7}")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"intake-{time.strftime('%Y%m%dT%H%M%S')}.json"
        path.write_text(json.dumps({"argv": sys.argv[1:], "cpus": os.cpu_count(),
                                    "load_average": os.getloadavg(),
                                    "runs": [r.summary() for r in runs]}, indent=2))
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
