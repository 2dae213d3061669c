"""The table (rich) and the JSON files a run leaves in ``bench/results/``.

Cells are "median (min-max)" over the repeats. The ratio columns are ours divided by the
peer, so read them with the arrow in the metric name: ↑ higher is better, ↓ lower is better.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.results import Figure, Results
from bench.targets import check

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Load:
    """The machine's load around the run: every figure is read against it."""

    start: tuple[float, ...]
    end: tuple[float, ...]
    cores: int
    busy: bool  # --busy: two CPU hogs ran beside the run

    def describe(self) -> str:
        hog = "yes (--busy: 2 x `yes > /dev/null`)" if self.busy else "no"
        return (f"load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in self.start)} at "
                f"start, {'/'.join(f'{x:.1f}' for x in self.end)} at end, on {self.cores} "
                f"cores; CPU hog: {hog}")
OURS = "ours"
REFERENCE = "reference"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:,.2f}"
    if unit in ("ms", "s") and abs(value) < 10:
        return f"{value:,.2f}" if abs(value) < 1 else f"{value:,.1f}"
    return f"{value:,.0f}"


def cell(fig: Figure | None) -> str:
    if fig is None:
        return ""
    if not fig.values:
        return f"[dim]{fig.status}[/]"
    med = fmt(fig.median, fig.unit)
    text = med
    if len(fig.values) > 1:
        text += f" [dim]({fmt(min(fig.values), fig.unit)}-{fmt(max(fig.values), fig.unit)})[/]"
    if fig.status != "ok":
        text += f" [yellow]{fig.status}[/]"
    return text


def ratio(ours: Figure | None, peer: Figure | None) -> str:
    if not ours or not peer or not ours.median or not peer.median:
        return ""
    r = ours.median / peer.median
    good = r >= 1 if ours.higher_is_better else r <= 1
    colour = "green" if good else "red"
    return f"[{colour}]{r:,.2f}x[/]"


def build_table(results: Results, systems: list[str], caption: str = "") -> Table:
    # Figures of pseudo-systems (pgbench in write_jobs) get a column and a ratio too.
    for fig in results.figures:
        if fig.system not in systems and fig.system != REFERENCE:
            systems = [*systems, fig.system]
    peers = [s for s in systems if s != OURS]
    table = Table(title="Job systems on one PostgreSQL (median (min-max) over repeats)",
                  caption=caption)
    table.add_column("scenario", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    for s in systems:
        table.add_column(s, justify="right", no_wrap=True)
    if OURS in systems:
        for p in peers:
            table.add_column(f"ours/{p}", justify="right", no_wrap=True)
    rows: dict[tuple[str, str], dict[str, Figure]] = {}
    for fig in results.figures:
        if fig.system in systems:
            rows.setdefault((fig.scenario, fig.metric), {})[fig.system] = fig
    last_scenario = None
    for (scenario, metric), figs in rows.items():
        arrow = "↑" if next(iter(figs.values())).higher_is_better else "↓"
        if last_scenario and scenario != last_scenario:
            table.add_section()
        last_scenario = scenario
        cells = [cell(figs.get(s)) for s in systems]
        ratios = [ratio(figs.get(OURS), figs.get(p)) for p in peers] if OURS in systems else []
        table.add_row(scenario, f"{metric} {arrow}", *cells, *ratios)
    return table


def build_reference_table(results: Results) -> Table | None:
    refs = [f for f in results.figures if f.system == REFERENCE]
    if not refs:
        return None
    table = Table(title="References on the same machine (median (min-max) over repeats)")
    table.add_column("what", no_wrap=True)
    table.add_column("figure", justify="right", no_wrap=True)
    table.add_column("unit", no_wrap=True)
    for fig in refs:
        table.add_row(fig.metric, cell(fig), fig.unit)
    return table


def footnotes(results: Results) -> list[str]:
    out = list(results.notes)
    for fig in results.figures:
        if fig.note:
            out.append(f"{fig.scenario} / {fig.metric} / {fig.system}: {fig.note}")
    return out


def build_target_table(results: Results) -> Table:
    table = Table(title="Issue 14 targets (ours, this run)")
    table.add_column("target", no_wrap=True)
    table.add_column("value(s)")
    table.add_column("status", no_wrap=True)
    colour = {"met": "green", "missed": "red", "n/a": "dim"}
    for v in check(results):
        table.add_row(v.target, v.value, f"[{colour[v.status]}]{v.status}[/]")
    return table


def target_rows(results: Results) -> list[dict[str, str]]:
    return [asdict(v) for v in check(results)]


def show(console: Console, results: Results, systems: list[str], load: Load | None = None) -> None:
    console.print(build_table(results, systems, load.describe() if load else ""))
    console.print(build_target_table(results))
    refs = build_reference_table(results)
    if refs is not None:
        console.print(refs)
    notes = footnotes(results)
    if notes:
        console.print("[bold]Notes[/]")
        for n in notes:
            console.print(f" • {n}", highlight=False)


def save(payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(payload["started_at"]))
    path = RESULTS_DIR / f"{stamp}.json"
    text = json.dumps(payload, indent=2, sort_keys=False, default=str)
    path.write_text(text)
    (RESULTS_DIR / "latest.json").write_text(text)
    return path


def payload(
    *, started_at: float, machine: dict[str, Any], plan: dict[str, Any], results: Results,
    argv: list[str], systems: dict[str, str], targets: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "started_at": started_at,
        "started_at_iso": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started_at)),
        "duration_s": round(time.time() - started_at, 1),
        "argv": argv,
        "machine": machine,
        "plan": plan,
        "systems": systems,
        "figures": [f.to_json() for f in results.figures],
        "targets": targets or [],
        "notes": footnotes(results),
    }
