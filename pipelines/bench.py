"""``onetrack bench``: generate a landing zone at a scale, run it day by day, measure every step.

The run goes through the same Dagster job as ``onetrack run`` (``pipelines.cli.run_day``); the
figures come from the run's event log, not from instrumenting assets:

- step wall time: ``STEP_START`` to ``STEP_SUCCESS``/``STEP_FAILURE`` (event log timestamps);
- rows out: the ``rows`` (else ``rows_*``) materialization metadata of the step's assets;
- rows in: ``records_read`` where the step reports it, else the day's ``rows`` of the upstream
  assets materialized in the same run (empty when none reports a figure);
- rows/s: rows in (else rows out) per second of step wall time;
- Great Expectations time: the ``elapsed_seconds`` of every ``ASSET_CHECK_EVALUATION`` of the step;
- peak memory: RSS of this process and all its descendants (the Spark JVM), sampled from ``/proc``.

Everything below except ``run_bench`` is plain functions on plain data (tested without Spark).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import multiprocessing
import os
import platform
import shutil
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from xml.sax.saxutils import escape

SCALES = {"S": 1_000, "M": 100_000, "L": 1_000_000}
DEFAULT_FROM = "2026-11-01"
MARKER = ".onetrack-bench"
STEP_END_EVENTS = ("STEP_SUCCESS", "STEP_FAILURE")

CSV_COLUMNS = [
    "scale",
    "orders_per_day",
    "dt",
    "day_index",
    "run_id",
    "step",
    "status",
    "wall_s",
    "rows_in",
    "rows_out",
    "rows_per_s",
    "ge_s",
    "checks",
    "day_wall_s",
    "day_ge_share",
    "day_peak_rss_bytes",
    "day_jvm_gc_s",
    "day_cached_bytes",
]


# --- roots -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchRoots:
    out: Path
    landing: Path
    warehouse: Path
    settlements: Path
    dagster_home: Path

    @classmethod
    def under(cls, out: str | Path) -> BenchRoots:
        out = Path(out).resolve()
        return cls(out, out / "landing", out / "warehouse", out / "settlements", out / "dagster_home")

    def env(self) -> dict[str, str]:
        """The environment that points every onetrack root (and Dagster) at this benchmark."""
        return {
            "ONETRACK_LANDING_DIR": str(self.landing),
            "ONETRACK_WAREHOUSE_DIR": str(self.warehouse),
            "ONETRACK_SETTLEMENT_DIR": str(self.settlements),
            "DAGSTER_HOME": str(self.dagster_home),
        }


def prepare_roots(roots: BenchRoots, *, clear_landing: bool, clear_outputs: bool) -> None:
    """Create the roots; clear the landing zone / warehouse + settlements of an earlier benchmark.

    Only a directory this command created (it holds the marker file) or an empty one is cleared,
    so a mistyped ``--out`` never deletes someone else's data.
    """
    out = roots.out
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        if clear_landing or clear_outputs:
            raise SystemExit(f"{out} is not empty and was not made by onetrack bench; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by onetrack bench; its subfolders are cleared on every run\n")
    targets = ([roots.landing] if clear_landing else []) + (
        [roots.warehouse, roots.settlements] if clear_outputs else []
    )
    for target in targets:
        shutil.rmtree(target, ignore_errors=True)
    for root in (roots.landing, roots.warehouse, roots.settlements, roots.dagster_home):
        root.mkdir(parents=True, exist_ok=True)


# --- event log -> per-step figures --------------------------------------------------------------


def _plain(value):
    """A number out of a Dagster ``MetadataValue`` (or a raw number); None for anything else."""
    raw = getattr(value, "value", value)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return raw


def event_records(entries) -> list[dict]:
    """Plain records of Dagster ``EventLogEntry`` objects (only what the benchmark needs)."""
    records = []
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        asset_key, meta = None, {}
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = data.materialization
            asset_key, meta = materialization.asset_key, materialization.metadata
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            asset_key, meta = data.asset_key, data.metadata
        numbers = {k: n for k, v in (meta or {}).items() if (n := _plain(v)) is not None}
        records.append(
            {
                "timestamp": float(entry.timestamp),
                "step_key": entry.step_key or event.step_key,
                "event_type": event.event_type_value,
                "asset_key": asset_key.to_user_string() if asset_key is not None else None,
                "metadata": numbers,
            }
        )
    return records


@dataclass
class StepFigures:
    step: str
    status: str
    wall_s: float | None
    rows_in: int | None
    rows_out: int | None
    rows_per_s: float | None
    ge_s: float
    checks: int
    assets: list[str] = field(default_factory=list)


def rows_of(meta: dict) -> int | None:
    """An asset's output rows: ``rows``, else the sum of its ``rows_<table>`` figures."""
    if "rows" in meta:
        return int(meta["rows"])
    parts = [int(v) for k, v in meta.items() if k.startswith("rows_")]
    return sum(parts) if parts else None


def _sum_or_none(values) -> int | None:
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def step_figures(records: list[dict], upstream: dict[str, list[str]]) -> list[StepFigures]:
    """Per step of one run (in start order): wall time, rows in/out, rows/s, GE time and checks.

    ``upstream`` maps an asset key (``"silver/orders"``) to the keys of the assets it depends on.
    """
    starts, ends, status = {}, {}, {}
    assets: dict[str, list[str]] = {}
    checks: dict[str, list[float]] = {}
    rows_by_asset: dict[str, int | None] = {}
    records_read: dict[str, list[int]] = {}
    for rec in sorted(records, key=lambda r: r["timestamp"]):
        step, kind = rec["step_key"], rec["event_type"]
        if step is None:
            continue
        if kind == "STEP_START":
            starts.setdefault(step, rec["timestamp"])
        elif kind in STEP_END_EVENTS:
            ends[step] = rec["timestamp"]
            status[step] = "success" if kind == "STEP_SUCCESS" else "failure"
        elif kind == "ASSET_MATERIALIZATION":
            assets.setdefault(step, []).append(rec["asset_key"])
            rows_by_asset[rec["asset_key"]] = rows_of(rec["metadata"])
            if "records_read" in rec["metadata"]:
                records_read.setdefault(step, []).append(int(rec["metadata"]["records_read"]))
        elif kind == "ASSET_CHECK_EVALUATION":
            checks.setdefault(step, []).append(float(rec["metadata"].get("elapsed_seconds", 0.0)))

    figures = []
    for step in sorted(starts, key=starts.get):
        own = assets.get(step, [])
        wall = ends[step] - starts[step] if step in ends else None
        if step in records_read:
            rows_in = max(records_read[step])
        else:
            parents = sorted({p for a in own for p in upstream.get(a, []) if p not in own})
            rows_in = _sum_or_none(rows_by_asset.get(p) for p in parents)
        rows_out = _sum_or_none(rows_by_asset.get(a) for a in own)
        basis = rows_in if rows_in is not None else rows_out
        figures.append(
            StepFigures(
                step=step,
                status=status.get(step, "not finished"),
                wall_s=wall,
                rows_in=rows_in,
                rows_out=rows_out,
                rows_per_s=basis / wall if basis is not None and wall else None,
                ge_s=sum(checks.get(step, []), 0.0),
                checks=len(checks.get(step, [])),
                assets=own,
            )
        )
    return figures


def run_wall_s(records: list[dict]) -> float:
    """A run's wall time: its first to its last event."""
    stamps = [r["timestamp"] for r in records]
    return max(stamps) - min(stamps) if stamps else 0.0


@dataclass
class DayFigures:
    dt: str
    run_id: str
    ok: bool
    wall_s: float
    ge_s: float
    ge_share: float | None
    peak_rss_bytes: int | None
    steps: list[StepFigures]
    checks_run: bool = True  # False: a history day, run without its checks (``--history-days``)
    # The Spark driver JVM (None without one in this process, e.g. Spark Connect): its garbage
    # collectors' pause time during the day, and the bytes Spark held cached or checkpointed when
    # the day ended (persisted RDDs, in memory and on disk). A process that runs many days ages
    # when these grow: the figures tell it from a day whose own work grew.
    jvm_gc_s: float | None = None
    cached_bytes: int | None = None


def day_figures(
    day: str, run_id: str, ok: bool, records, upstream, peak_rss_bytes, *, checks_run: bool = True
) -> DayFigures:
    steps = step_figures(records, upstream)
    wall = run_wall_s(records)
    ge = sum(s.ge_s for s in steps)
    return DayFigures(
        day, run_id, ok, wall, ge, ge / wall if wall else None, peak_rss_bytes, steps, checks_run
    )


def growth_ratio(day_walls: list[float]) -> float | None:
    """Last day's wall time over day 5's (the daily cost must not grow with history); None < 5 days."""
    if len(day_walls) < 5 or not day_walls[4]:
        return None
    return day_walls[-1] / day_walls[4]


def summarize(days: list[DayFigures]) -> dict:
    walls = [d.wall_s for d in days]
    # day 5 and the last day are compared as whole days: both with their checks
    comparable = len(days) >= 5 and days[4].checks_run and days[-1].checks_run
    total, ge = sum(walls), sum(d.ge_s for d in days)
    peaks = [d.peak_rss_bytes for d in days if d.peak_rss_bytes is not None]
    return {
        "days_run": len(days),
        "all_ok": all(d.ok for d in days),
        "total_wall_s": round(total, 3),
        "ge_s": round(ge, 3),
        "ge_share": round(ge / total, 4) if total else None,
        "peak_rss_bytes": max(peaks) if peaks else None,
        "last_over_day5": round(r, 4) if comparable and (r := growth_ratio(walls)) is not None else None,
    }


# --- peak memory of the process tree -----------------------------------------------------------


# proc(5) task flag: forked and has not exec'd yet.
PF_FORKNOEXEC = 0x40


def _read_stat(proc: Path, pid: str) -> tuple[int, int, int, int] | None:
    """``(ppid, flags, vsize, rss_pages)`` from ``/proc/<pid>/stat``; None if it has gone."""
    try:
        text = (proc / pid / "stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    return int(fields[1]), int(fields[6]), int(fields[20]), int(fields[21])


def tree_rss_bytes(root_pid: int, proc: str | Path = "/proc", page_size: int | None = None) -> int | None:
    """Resident memory of ``root_pid`` and all its descendants, in bytes (None without ``/proc``).

    A child caught between fork and exec with its parent's address space (the same virtual size,
    within 1 %) is not counted: the JVM starts helper processes that way (Hadoop's local file
    system runs shell commands), and for that instant the child reports the whole JVM's resident
    set as its own, which would count the JVM twice.
    """
    proc = Path(proc)
    if not proc.is_dir():
        return None
    page_size = page_size or os.sysconf("SC_PAGE_SIZE")
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[int, int, int, int]] = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        stat = _read_stat(proc, entry.name)
        if stat is None:
            continue
        pid = int(entry.name)
        children.setdefault(stat[0], []).append(pid)
        stats[pid] = stat
    if root_pid not in stats:
        return None

    def shares_parent_memory(pid: int) -> bool:
        # The parent's size is read a moment apart from the child's and a JVM's moves all the
        # time: "same" is within 1 %.
        ppid, flags, vsize, _ = stats[pid]
        if not flags & PF_FORKNOEXEC or ppid not in stats:
            return False
        return abs(stats[ppid][2] - vsize) <= stats[ppid][2] // 100

    total, todo, seen = 0, [root_pid], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        if pid == root_pid or not shares_parent_memory(pid):
            total += stats[pid][3]
        todo.extend(children.get(pid, []))
    return total * page_size


@dataclass(frozen=True)
class JvmState:
    gc_pause_s: float  # total pause time of the driver JVM's collectors since it started
    cached_bytes: int  # persisted RDD blocks (memory + disk)


def jvm_state(context=None) -> JvmState | None:
    """The Spark driver JVM's GC and block-manager figures, or None when this process has no
    SparkContext (e.g. Spark Connect). Concurrent collectors (G1's "Concurrent GC") run beside
    the application and are not pauses: not counted."""
    from pyspark import SparkContext

    context = context or SparkContext._active_spark_context
    if context is None or getattr(context, "_jvm", None) is None:
        return None
    jvm = context._jvm
    pause_ms = sum(
        bean.getCollectionTime()
        for bean in jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
        if "Concurrent" not in bean.getName() and bean.getCollectionTime() > 0
    )
    cached = sum(info.memSize() + info.diskSize() for info in context._jsc.sc().getRDDStorageInfo())
    return JvmState(pause_ms / 1000.0, int(cached))


class PeakMemorySampler:
    """A background thread sampling the process tree's RSS; ``reset()`` starts a new peak."""

    def __init__(self, pid: int | None = None, interval_s: float = 0.25, sample=tree_rss_bytes):
        self.pid = pid or os.getpid()
        self.interval_s = interval_s
        self._sample = sample
        self._peak: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-rss", daemon=True)

    def sample_now(self) -> None:
        value = self._sample(self.pid)
        if value is not None:
            with self._lock:
                self._peak = value if self._peak is None else max(self._peak, value)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_now()

    def reset(self) -> int | None:
        """The peak since the last reset; starts a new one."""
        self.sample_now()
        with self._lock:
            peak, self._peak = self._peak, None
        return peak

    def __enter__(self):
        self.sample_now()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# --- machine, files, table, charts --------------------------------------------------------------


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "ram_bytes": ram,
        "load_average_at_start": load,
        "python": platform.python_version(),
        "pyspark": _version("pyspark"),
        "delta_spark": _version("delta-spark"),
        "dagster": _version("dagster"),
        "great_expectations": _version("great-expectations"),
        "spark_master": os.environ.get("ONETRACK_SPARK_MASTER", "local[*]"),
        "spark_driver_memory": os.environ.get("ONETRACK_SPARK_DRIVER_MEMORY", "4g"),
    }


def landed_records(records: dict[str, dict[str, int]], days: list[str]) -> dict:
    """Landed records per source for the benchmarked days (generator summary ``records``)."""
    wanted = set(days)
    by_source = {s: sum(n for d, n in per_day.items() if d in wanted) for s, per_day in records.items()}
    return {"by_source": by_source, "total": sum(by_source.values())}


def csv_rows(scale: str, orders_per_day: int, days: list[DayFigures]) -> list[dict]:
    rows = []
    for index, day in enumerate(days, start=1):
        for step in day.steps:
            rows.append(
                {
                    "scale": scale,
                    "orders_per_day": orders_per_day,
                    "dt": day.dt,
                    "day_index": index,
                    "run_id": day.run_id,
                    "step": step.step,
                    "status": step.status,
                    "wall_s": _round(step.wall_s, 3),
                    "rows_in": step.rows_in,
                    "rows_out": step.rows_out,
                    "rows_per_s": _round(step.rows_per_s, 1),
                    "ge_s": _round(step.ge_s, 3),
                    "checks": step.checks,
                    "day_wall_s": _round(day.wall_s, 3),
                    "day_ge_share": _round(day.ge_share, 4),
                    "day_peak_rss_bytes": day.peak_rss_bytes,
                    "day_jvm_gc_s": _round(day.jvm_gc_s, 3),
                    "day_cached_bytes": day.cached_bytes,
                }
            )
    return rows


def _round(value, digits):
    return None if value is None else round(value, digits)


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_COLUMNS})


def report_json(*, scale, orders_per_day, days: list[DayFigures], landed, machine, extra) -> dict:
    return {
        "scale": scale,
        "orders_per_day": orders_per_day,
        "machine": machine,
        "landed_records": landed,
        **extra,
        "summary": summarize(days),
        "days": [asdict(d) for d in days],
    }


def _fmt(value, spec: str) -> str:
    """``format(value, spec)``; an unknown value is blank, padded to the spec's width (columns stay put)."""
    if value is not None:
        return format(value, spec)
    width = "".join(ch for ch in spec.split(",")[0].split(".")[0] if ch.isdigit())
    return " " * int(width or 0)


def _mb(value) -> str:
    return "" if value is None else f"{value / 2**20:,.0f} MB"


def format_day(day: DayFigures) -> str:
    header = (
        f"{'step':<30} {'status':<8} {'wall_s':>8} {'rows_in':>11} {'rows_out':>11} "
        f"{'rows/s':>10} {'ge_s':>7} {'checks':>6}"
    )
    lines = [f"[{day.dt}] run {day.run_id}", header]
    for s in day.steps:
        lines.append(
            f"{s.step:<30} {s.status[:8]:<8} {_fmt(s.wall_s, '8.1f')} {_fmt(s.rows_in, '11,d')} "
            f"{_fmt(s.rows_out, '11,d')} {_fmt(s.rows_per_s, '10,.0f')} {s.ge_s:7.1f} {s.checks:6d}"
        )
    share = "" if day.ge_share is None else f" ({day.ge_share:.1%} of the day)"
    if not day.checks_run:
        share += " [history day: run without its checks]"
    lines.append(
        f"[{day.dt}] {'ok' if day.ok else 'FAILED'}: day {day.wall_s:.1f}s, "
        f"GE checks {day.ge_s:.1f}s{share}, peak RSS (process tree) {_mb(day.peak_rss_bytes)}"
        + ("" if day.jvm_gc_s is None else f", JVM GC pauses {day.jvm_gc_s:.1f}s")
        + ("" if day.cached_bytes is None else f", Spark cached at the end {_mb(day.cached_bytes)}")
    )
    return "\n".join(lines)


def format_summary(days: list[DayFigures]) -> str:
    summary = summarize(days)
    lines = [f"{'dt':<12} {'wall_s':>8} {'ge_s':>7} {'ge_share':>8} {'peak_rss':>10}"]
    for d in days:
        lines.append(
            f"{d.dt:<12} {d.wall_s:8.1f} {d.ge_s:7.1f} {_fmt(d.ge_share, '8.1%')} {_mb(d.peak_rss_bytes):>10}"
        )
    ratio = summary["last_over_day5"]
    lines.append(
        f"total {summary['total_wall_s']:.1f}s over {len(days)} day(s); GE share "
        f"{_fmt(summary['ge_share'], '.1%')}; peak RSS {_mb(summary['peak_rss_bytes'])}; last day / day 5: "
        + ("n/a (< 5 days)" if ratio is None else f"{ratio:.2f}")
    )
    return "\n".join(lines)


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
            f"<title>{escape(title)}</title>",
            f'<rect width="{width}" height="{height}" fill="white"/>',
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>',
            *body,
            "</svg>",
            "",
        ]
    )


def svg_days_chart(days: list[str], series: dict[str, list[float]], title: str) -> str:
    """Line chart: one polyline per series (e.g. day wall, GE time) over the days, seconds on y."""
    width, height, left, right, top, bottom = 720, 400, 60, 150, 40, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max([v for values in series.values() for v in values] + [1.0]) * 1.1

    def x(i):
        return left + (plot_w * i / (len(days) - 1) if len(days) > 1 else plot_w / 2)

    def y(v):
        return top + plot_h - plot_h * v / top_value

    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>',
        f'<text x="15" y="{top + plot_h / 2}" transform="rotate(-90 15 {top + plot_h / 2})" '
        'text-anchor="middle">seconds</text>',
    ]
    for k in range(5):
        v = top_value * k / 4
        body.append(f'<text x="{left - 5}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    step = max(1, len(days) // 10)
    for i, day in enumerate(days):
        if i % step == 0 or i == len(days) - 1:
            body.append(
                f'<text x="{x(i):.1f}" y="{top + plot_h + 15}" text-anchor="end" '
                f'transform="rotate(-45 {x(i):.1f} {top + plot_h + 15})">{escape(day)}</text>'
            )
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for n, (name, values) in enumerate(series.items()):
        color = colors[n % len(colors)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        body.append(
            f'<polyline data-series="{escape(name)}" fill="none" stroke="{color}" stroke-width="2" '
            f'points="{points}"/>'
        )
        for i, v in enumerate(values):
            body.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{color}"/>')
        ly = top + 15 + 18 * n
        body.append(f'<rect x="{left + plot_w + 15}" y="{ly - 9}" width="12" height="12" fill="{color}"/>')
        body.append(f'<text x="{left + plot_w + 32}" y="{ly + 1}">{escape(name)}</text>')
    return _svg(width, height, body, title)


def svg_steps_chart(steps: dict[str, tuple[float, float]], title: str) -> str:
    """Horizontal bars per step: mean wall seconds, with the GE part of it drawn inside."""
    row_h, left, right, top = 22, 220, 90, 40
    plot_w = 460
    width, height = left + plot_w + right, top + row_h * len(steps) + 40
    top_value = max([wall for wall, _ in steps.values()] + [1.0])
    body = []
    for i, (name, (wall, ge)) in enumerate(steps.items()):
        yy = top + i * row_h
        body.append(f'<text x="{left - 6}" y="{yy + 14}" text-anchor="end">{escape(name)}</text>')
        body.append(
            f'<rect data-step="{escape(name)}" data-seconds="{wall:.3f}" x="{left}" y="{yy + 3}" '
            f'width="{plot_w * wall / top_value:.1f}" height="{row_h - 6}" fill="#1f77b4"/>'
        )
        body.append(
            f'<rect data-ge="{escape(name)}" data-seconds="{ge:.3f}" x="{left}" y="{yy + 3}" '
            f'width="{plot_w * min(ge, wall) / top_value:.1f}" height="{row_h - 6}" fill="#ff7f0e"/>'
        )
        body.append(f'<text x="{left + plot_w * wall / top_value + 5:.1f}" y="{yy + 14}">{wall:.1f}s</text>')
    ly = top + row_h * len(steps) + 20
    body.append(f'<rect x="{left}" y="{ly - 9}" width="12" height="12" fill="#1f77b4"/>')
    body.append(f'<text x="{left + 16}" y="{ly + 1}">step wall (mean per day)</text>')
    body.append(f'<rect x="{left + 200}" y="{ly - 9}" width="12" height="12" fill="#ff7f0e"/>')
    body.append(f'<text x="{left + 216}" y="{ly + 1}">of which GE checks</text>')
    return _svg(width, height, body, title)


def mean_step_times(days: list[DayFigures]) -> dict[str, tuple[float, float]]:
    """Mean (wall, GE) seconds per step over the days it ran, slowest first."""
    acc: dict[str, list[tuple[float, float]]] = {}
    for day in days:
        for s in day.steps:
            if s.wall_s is not None:
                acc.setdefault(s.step, []).append((s.wall_s, s.ge_s))
    means = {step: (sum(w for w, _ in v) / len(v), sum(g for _, g in v) / len(v)) for step, v in acc.items()}
    return dict(sorted(means.items(), key=lambda kv: -kv[1][0]))


def write_plots(stem: Path, scale: str, days: list[DayFigures]) -> list[Path]:
    days_svg, steps_svg = stem.with_name(stem.name + "_days.svg"), stem.with_name(stem.name + "_steps.svg")
    days_svg.write_text(
        svg_days_chart(
            [d.dt for d in days],
            {"day wall": [d.wall_s for d in days], "GE checks": [d.ge_s for d in days]},
            f"onetrack bench {scale}: seconds per day",
        ),
        encoding="utf-8",
    )
    steps_svg.write_text(
        svg_steps_chart(mean_step_times(days), f"onetrack bench {scale}: seconds per step"),
        encoding="utf-8",
    )
    return [days_svg, steps_svg]


# --- the command ------------------------------------------------------------------------------


def write_figures(stem: Path, days: list[DayFigures], report: dict) -> None:
    """The CSV (one row per day and step) and JSON report of the days run so far."""
    write_csv(stem.with_suffix(".csv"), csv_rows(report["scale"], report["orders_per_day"], days))
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def _generate_records(
    landing: str, first: dt.date, last: dt.date, orders_per_day: int, seed: int, warmup_days: int = 0
) -> dict:
    from pipelines.generate import generate_landing

    summary = generate_landing(
        Path(landing), first, last, orders_per_day=orders_per_day, seed=seed, faults=True,
        warmup_days=warmup_days,
    )
    return summary.records


def job_without_checks(defs, job):
    """``job``'s assets without their asset checks, as a job of ``defs`` (for the history days of a
    long benchmark: they only build the warehouse the measured days run on, and their GE checks
    would cost ~20 % of each; the checks write no table, so the warehouse is the same)."""
    import dagster as dg

    name = f"{job.name}_without_checks"
    history = dg.define_asset_job(
        name,
        selection=dg.AssetSelection.all().without_checks(),
        partitions_def=job.partitions_def,
        executor_def=job.executor_def,
    )
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[history])).resolve_job_def(name)


def history_range(text: str) -> tuple[int, int]:
    """``"6-27"`` -> ``(6, 27)``: 1-based day numbers of a benchmark run, inclusive."""
    first, sep, last = text.partition("-")
    try:
        bounds = (int(first), int(last if sep else first))
    except ValueError:
        raise ValueError(f"expected FIRST-LAST day numbers, e.g. 6-27; got {text!r}") from None
    if bounds[0] < 1 or bounds[1] < bounds[0]:
        raise ValueError(f"expected 1 <= FIRST <= LAST; got {text!r}")
    return bounds


def upstream_map(defs) -> dict[str, list[str]]:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys)
        for key in graph.get_all_asset_keys()
    }


def unopened_days(day_keys: list[str], partitions_def) -> str | None:
    """Why ``day_keys`` cannot all run, if one is not (yet) a partition of ``partitions_def``: a
    day's partition opens when the day is over in the business time zone, so a range that ends
    today or later would fail on its first such day, hours into a long run. None if all can run."""
    last = partitions_def.get_last_partition_key()
    later = [key for key in day_keys if last is None or key > last]
    if not later:
        return None
    if last is None:
        return f"no daily partition is open yet; the range {day_keys[0]}..{day_keys[-1]} cannot run"
    latest_start = dt.date.fromisoformat(last) - dt.timedelta(days=len(day_keys) - 1)
    return (
        f"{later[0]}..{later[-1]} ({len(later)} of the {len(day_keys)} days) are not daily partitions "
        f"yet: the last is {last} (a day's partition opens when the day is over, "
        f"{partitions_def.timezone}). Use a range that ends by {last}, e.g. "
        f"--from {latest_start.isoformat()} --days {len(day_keys)}"
    )


SATURDAY = 5


def maintenance_days(dates: list[dt.date], every: str) -> set[dt.date]:
    """The days after whose run the maintenance job runs in a benchmark: ``"weekly"``, after each
    Saturday's (production's schedule, Sunday 04:00 Asia/Shanghai, falls between the daily runs of
    Saturday, 02:00 Sunday, and of Sunday) but the last day's (nothing runs after it); ``"none"``:
    never."""
    if every == "none":
        return set()
    if every != "weekly":
        raise ValueError(f"maintenance: expected 'none' or 'weekly', got {every!r}")
    return {d for d in dates[:-1] if d.weekday() == SATURDAY}


def _maintenance_job(defs):
    from pipelines.maintenance import maintenance_job

    return defs.resolve_job_def(maintenance_job.name)


def run_maintenance(job, instance, after: dt.date, *, log=print) -> dict:
    """Run the maintenance job (OPTIMIZE + VACUUM of every table) in-process, as the weekly
    schedule would between two daily runs; its figures (wall time, files before and after, from
    the op's output metadata). Not part of any day's figures."""
    log(f"[{after}] then {job.name} (the weekly maintenance) ...")
    started = time.monotonic()
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, tags={"onetrack/launched_by": "bench"}
    )
    wall = time.monotonic() - started
    outputs = [
        e.event_specific_data.metadata for e in result.all_events if e.event_type_value == "STEP_OUTPUT"
    ]
    figures = {
        key: sum(int(m[key].value) for m in outputs if key in m)
        for key in ("tables", "files_before", "files_after")
    }
    run = {"after_day": after.isoformat(), "run_id": result.run_id, "ok": result.success}
    run.update(wall_s=round(wall, 3), **figures)
    log(
        f"[{after}] maintenance {'ok' if result.success else 'FAILED'} in {wall:.1f}s: "
        f"{figures['tables']} tables, {figures['files_before']:,} -> {figures['files_after']:,} files"
    )
    return run


def run_bench(
    *,
    scale: str,
    orders_per_day: int,
    start: dt.date,
    days: int,
    out: str | Path,
    seed: int = 7,
    warmup_days: int = 0,
    skip_generate: bool = False,
    keep_warehouse: bool = False,
    plot: bool = False,
    history_days: tuple[int, int] | None = None,
    maintenance: str = "none",
    log=print,
) -> int:
    """Generate (unless ``skip_generate``) and run ``days`` days from ``start``; figures per day.

    ``history_days``: the days (1-based numbers in this run, inclusive) run without their asset
    checks, to build a long history sooner; day 5 and the last day must keep theirs for the
    summary's ``last_over_day5``. ``maintenance``: ``"weekly"`` runs the maintenance job after
    each Saturday (:func:`maintenance_days`), as production does; its runs are timed apart
    (``maintenance`` in the JSON report), not in the days' figures.
    """
    partition_start = os.environ.get("ONETRACK_PARTITION_START", DEFAULT_FROM)
    if start < dt.date.fromisoformat(partition_start):
        os.environ["ONETRACK_PARTITION_START"] = start.isoformat()
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    day_keys = [d.isoformat() for d in dates]
    from pipelines.partitions import daily_partitions

    after_maintenance = maintenance_days(dates, maintenance)  # an unknown value fails before work
    problem = unopened_days(day_keys, daily_partitions)
    if problem:  # before anything is cleared or generated
        raise SystemExit(f"onetrack bench: {problem}")
    roots = BenchRoots.under(out)
    prepare_roots(roots, clear_landing=not skip_generate, clear_outputs=not keep_warehouse)
    os.environ.update(roots.env())
    machine = machine_info()
    started_at = dt.datetime.now(dt.UTC)

    generation_s = None
    if skip_generate:
        summary_file = roots.landing / "_generator" / "summary.json"
        if not summary_file.exists():
            raise SystemExit(f"--skip-generate: no landing zone in {roots.landing} ({summary_file} missing)")
        generated = json.loads(summary_file.read_text())
        records, warmup_days = generated["records"], generated.get("warmup_days", 0)
        log(f"reusing the landing zone in {roots.landing}")
    else:
        log(f"generating {days} day(s) at {orders_per_day:,} orders/day into {roots.landing} ...")
        t0 = time.monotonic()
        # In a child process: the generator's memory (GBs at L) goes back to the OS before the
        # pipeline runs, so the peak measured during the days is the pipeline's.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            records = pool.submit(
                _generate_records, str(roots.landing), dates[0], dates[-1], orders_per_day, seed, warmup_days
            ).result()
        generation_s = round(time.monotonic() - t0, 3)
    landed = landed_records(records, day_keys)
    log(f"landed records: {landed['by_source']} ({generation_s if generation_s is not None else '-'}s)")

    from pipelines.cli import daily_job_and_instance, run_day
    from pipelines.definitions import defs

    job, instance = daily_job_and_instance()
    history_job = job_without_checks(defs, job) if history_days else None
    maintenance_job = _maintenance_job(defs) if after_maintenance else None
    upstream = upstream_map(defs)
    stem = roots.out / f"bench_{scale}_{started_at.strftime('%Y%m%dT%H%M%SZ')}"
    extra = {
        "date": started_at.isoformat(timespec="seconds"),
        "from": day_keys[0],
        "days_requested": days,
        "seed": seed,
        "warmup_days": warmup_days,
        "generated": not skip_generate,
        "history_days": list(history_days) if history_days else None,
        "maintenance": maintenance,
        # the maintenance runs, each after the day it follows (timed apart from the days)
        "maintenance_runs": [],
        "generation_s": generation_s,
        "command": " ".join(sys.argv),
        "roots": {k: str(v) for k, v in asdict(roots).items()},
    }
    results: list[DayFigures] = []
    with PeakMemorySampler() as sampler:
        for number, day in enumerate(dates, start=1):
            checks_run = not (history_days and history_days[0] <= number <= history_days[1])
            sampler.reset()
            jvm_before = jvm_state()  # None before day 1 starts the SparkSession: its GC counts from 0
            ok, result = run_day(job if checks_run else history_job, instance, day, log=log)
            peak, jvm_after = sampler.reset(), jvm_state()
            figures = day_figures(
                day.isoformat(),
                result.run_id,
                ok,
                event_records(instance.all_logs(result.run_id)),
                upstream,
                peak,
                checks_run=checks_run,
            )
            if jvm_after is not None:
                figures.jvm_gc_s = jvm_after.gc_pause_s - (jvm_before.gc_pause_s if jvm_before else 0.0)
                figures.cached_bytes = jvm_after.cached_bytes
            results.append(figures)
            log(format_day(figures))
            # written after every day: a long run that is stopped keeps what it measured
            report = report_json(
                scale=scale,
                orders_per_day=orders_per_day,
                days=results,
                landed=landed,
                machine=machine,
                extra=extra,
            )
            write_figures(stem, results, report)
            if not ok:
                log(f"[{day}] stopping: later days build on this one. Run id {result.run_id}")
                break
            if day in after_maintenance:
                run = run_maintenance(maintenance_job, instance, day, log=log)
                run["peak_rss_bytes"] = sampler.reset()
                extra["maintenance_runs"].append(run)  # the list the report holds
                write_figures(stem, results, report)
                if not run["ok"]:
                    log(f"[{day}] stopping: the maintenance failed. Run id {run['run_id']}")
                    break

    log(format_summary(results))
    log(f"figures: {stem.with_suffix('.csv')}\n         {stem.with_suffix('.json')}")
    if plot:
        for path in write_plots(stem, scale, results):
            log(f"chart:   {path}")
    maintained = all(run["ok"] for run in extra["maintenance_runs"])
    return 0 if results and all(d.ok for d in results) and len(results) == days and maintained else 1
