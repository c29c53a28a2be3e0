"""``onetrack bench``: the figures from hand-made event records, the files and the charts (no Spark)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from types import SimpleNamespace

import pytest
from dagster import AssetKey, MetadataValue

from pipelines import bench, cli
from pipelines.bench import (
    CSV_COLUMNS,
    BenchRoots,
    DayFigures,
    PeakMemorySampler,
    StepFigures,
    csv_rows,
    day_figures,
    event_records,
    format_day,
    growth_ratio,
    landed_records,
    mean_step_times,
    prepare_roots,
    report_json,
    step_figures,
    summarize,
    svg_days_chart,
    svg_steps_chart,
    tree_rss_bytes,
    write_csv,
    write_plots,
)

SVG = "{http://www.w3.org/2000/svg}"

UPSTREAM = {
    "bronze/orders": [],
    "silver/orders": ["bronze/orders"],
    "quarantine/orders": ["bronze/orders"],
    "finance/order_attribution": ["silver/orders", "silver/traffic"],
    "gold/order_reexposure": ["finance/order_attribution", "silver/returns"],
    "serving/kpi_duckdb": ["gold/kpi_daily"],
    "gold/kpi_daily": ["finance/order_attribution"],
}


def rec(t, step, kind, asset=None, **meta):
    return {"timestamp": t, "step_key": step, "event_type": kind, "asset_key": asset, "metadata": meta}


def one_run() -> list[dict]:
    """A day of five steps; timestamps in seconds. Listed out of order on purpose."""
    return [
        rec(110.0, "bronze__orders", "STEP_SUCCESS"),
        rec(100.0, None, "PIPELINE_START"),
        rec(100.0, "bronze__orders", "STEP_START"),
        rec(104.0, "bronze__orders", "ASSET_MATERIALIZATION", "bronze/orders", rows=1000, records_read=1000),
        rec(
            106.0, "bronze__orders", "ASSET_CHECK_EVALUATION", "bronze/orders", elapsed_seconds=1.5, rows=1000
        ),
        rec(108.0, "bronze__orders", "ASSET_CHECK_EVALUATION", "bronze/orders", elapsed_seconds=0.5),
        rec(110.0, "validate_orders", "STEP_START"),
        rec(
            120.0,
            "validate_orders",
            "ASSET_MATERIALIZATION",
            "silver/orders",
            rows=900,
            records_read=1000,
            records_accepted=900,
        ),
        rec(121.0, "validate_orders", "ASSET_MATERIALIZATION", "quarantine/orders", rows=40),
        rec(125.0, "validate_orders", "ASSET_CHECK_EVALUATION", "silver/orders", elapsed_seconds=2.0),
        rec(130.0, "validate_orders", "STEP_SUCCESS"),
        rec(130.0, "finance__order_attribution", "STEP_START"),
        rec(
            133.0,
            "finance__order_attribution",
            "ASSET_MATERIALIZATION",
            "finance/order_attribution",
            rows=850,
        ),
        rec(135.0, "finance__order_attribution", "STEP_SUCCESS"),
        rec(135.0, "gold__order_reexposure", "STEP_START"),
        rec(137.5, "gold__order_reexposure", "STEP_FAILURE"),
        rec(137.5, "serving__kpi_duckdb", "STEP_START"),
        rec(
            139.0,
            "serving__kpi_duckdb",
            "ASSET_MATERIALIZATION",
            "serving/kpi_duckdb",
            rows_kpi_daily=3,
            rows_ad_fee_refund_ledger=7,
        ),
        rec(140.0, "serving__kpi_duckdb", "STEP_SUCCESS"),
        rec(140.0, None, "PIPELINE_SUCCESS"),
    ]


def by_step(figures):
    return {f.step: f for f in figures}


def test_step_figures_wall_rows_ge_per_step():
    steps = step_figures(one_run(), UPSTREAM)
    assert [s.step for s in steps] == [
        "bronze__orders",
        "validate_orders",
        "finance__order_attribution",
        "gold__order_reexposure",
        "serving__kpi_duckdb",
    ]
    s = by_step(steps)
    # bronze: 100 -> 110; records_read is its input; 1000 rows / 10 s; GE 1.5 + 0.5
    assert (s["bronze__orders"].wall_s, s["bronze__orders"].rows_in, s["bronze__orders"].rows_out) == (
        10.0,
        1000,
        1000,
    )
    assert s["bronze__orders"].rows_per_s == 100.0
    assert (s["bronze__orders"].ge_s, s["bronze__orders"].checks) == (2.0, 2)
    # validate: 110 -> 130; in = records_read 1000; out = silver 900 + quarantine 40; 1000 / 20 s
    v = s["validate_orders"]
    assert (v.wall_s, v.rows_in, v.rows_out, v.rows_per_s, v.ge_s, v.checks) == (
        20.0,
        1000,
        940,
        50.0,
        2.0,
        1,
    )
    assert v.assets == ["silver/orders", "quarantine/orders"]
    # attribution: no records_read -> upstream silver/orders 900 (silver/traffic not in this run); 900 / 5 s
    a = s["finance__order_attribution"]
    assert (a.wall_s, a.rows_in, a.rows_out, a.rows_per_s, a.ge_s, a.checks) == (5.0, 900, 850, 180.0, 0.0, 0)
    # failed step: its wall time; it materialized nothing, so it has no rows in, out or per second
    f = s["gold__order_reexposure"]
    assert (f.status, f.wall_s, f.rows_in, f.rows_out, f.rows_per_s) == ("failure", 2.5, None, None, None)
    # serving: rows_* summed (3 + 7); its upstream gold/kpi_daily never materialized -> rows in empty,
    # so rows/s is over the rows out: 10 / 2.5 s
    k = s["serving__kpi_duckdb"]
    assert (k.rows_in, k.rows_out, k.rows_per_s) == (None, 10, 4.0)


def test_step_without_end_event_is_not_finished():
    steps = step_figures([rec(1.0, "x", "STEP_START")], {})
    assert (steps[0].status, steps[0].wall_s, steps[0].rows_per_s) == ("not finished", None, None)


def test_day_figures_wall_and_ge_share():
    day = day_figures("2026-11-01", "r1", True, one_run(), UPSTREAM, 3 * 2**30)
    # first event 100, last 140; GE 2.0 + 2.0 = 4.0 s of 40 s
    assert day.wall_s == 40.0
    assert day.ge_s == 4.0
    assert day.ge_share == pytest.approx(0.1)
    assert day.peak_rss_bytes == 3 * 2**30


def test_growth_ratio_last_day_over_day5():
    assert growth_ratio([9.0, 8.0, 7.0, 6.0, 50.0, 60.0, 62.5]) == pytest.approx(62.5 / 50.0)  # 1.25
    assert growth_ratio([9.0, 8.0, 7.0, 6.0, 40.0]) == 1.0  # day 5 is the last day
    assert growth_ratio([9.0, 8.0, 7.0, 6.0]) is None


def _day(d, wall, ge, peak, ok=True):
    return DayFigures(d, f"run-{d}", ok, wall, ge, ge / wall, peak, [])


def test_summarize_totals_share_peak_ratio():
    days = [
        _day(f"2026-11-0{i}", w, g, p)
        for i, (w, g, p) in enumerate(
            [
                (100.0, 20.0, 5),
                (80.0, 20.0, 9),
                (80.0, 10.0, None),
                (70.0, 10.0, 7),
                (50.0, 10.0, 6),
                (60.0, 10.0, 8),
            ],
            start=1,
        )
    ]
    s = summarize(days)
    assert s["total_wall_s"] == 440.0  # 100 + 80 + 80 + 70 + 50 + 60
    assert s["ge_s"] == 80.0
    assert s["ge_share"] == pytest.approx(80 / 440, abs=1e-4)
    assert s["peak_rss_bytes"] == 9
    assert s["last_over_day5"] == 1.2  # 60 / 50
    assert s["all_ok"] is True
    assert summarize(days + [_day("2026-11-07", 1.0, 0.0, None, ok=False)])["all_ok"] is False


def test_event_records_from_dagster_entries():
    def entry(t, step, kind, data):
        return SimpleNamespace(
            timestamp=t,
            step_key=step,
            dagster_event=SimpleNamespace(event_type_value=kind, event_specific_data=data, step_key=step),
        )

    materialization = SimpleNamespace(
        materialization=SimpleNamespace(
            asset_key=AssetKey(["silver", "orders"]),
            metadata={
                "rows": MetadataValue.int(900),
                "records_read": 1000,
                "preview": MetadataValue.md("| a |"),
                "ok": True,
            },
        )
    )
    check = SimpleNamespace(
        asset_key=AssetKey(["silver", "orders"]),
        metadata={"elapsed_seconds": MetadataValue.float(1.25), "examples": MetadataValue.md("")},
    )
    entries = [
        entry(1.0, "validate_orders", "STEP_START", None),
        entry(2.0, "validate_orders", "ASSET_MATERIALIZATION", materialization),
        entry(3.0, "validate_orders", "ASSET_CHECK_EVALUATION", check),
        SimpleNamespace(timestamp=3.5, step_key=None, dagster_event=None),  # a plain log line
    ]
    records = event_records(entries)
    assert records == [
        {
            "timestamp": 1.0,
            "step_key": "validate_orders",
            "event_type": "STEP_START",
            "asset_key": None,
            "metadata": {},
        },
        {
            "timestamp": 2.0,
            "step_key": "validate_orders",
            "event_type": "ASSET_MATERIALIZATION",
            "asset_key": "silver/orders",
            "metadata": {"rows": 900, "records_read": 1000},
        },
        {
            "timestamp": 3.0,
            "step_key": "validate_orders",
            "event_type": "ASSET_CHECK_EVALUATION",
            "asset_key": "silver/orders",
            "metadata": {"elapsed_seconds": 1.25},
        },
    ]


def _stat(pid, comm, ppid, rss_pages, flags=0x400000, vsize=None):
    # fields after "(comm)": state, ppid, pgrp, session, tty, tpgid, flags (field 9 of proc(5)),
    # 13 more, vsize (23), rss (24), then the rest
    vsize = 1000 * pid if vsize is None else vsize
    middle = [str(ppid), "0", "0", "0", "0", str(flags), *["0"] * 13, str(vsize), str(rss_pages)]
    return " ".join([f"{pid} ({comm})", "S", *middle, *["0"] * 5]) + "\n"


def test_tree_rss_sums_the_process_and_its_descendants(tmp_path):
    tree = {10: ("python", 1, 100), 11: ("java) x (y", 10, 50), 12: ("sh", 11, 25), 13: ("other", 1, 1000)}
    for pid, (comm, ppid, rss) in tree.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(_stat(pid, comm, ppid, rss))
    (tmp_path / "self").mkdir()
    (tmp_path / "99").mkdir()  # a process gone between listing and reading
    assert tree_rss_bytes(10, proc=tmp_path, page_size=4096) == (100 + 50 + 25) * 4096
    assert tree_rss_bytes(11, proc=tmp_path, page_size=4096) == (50 + 25) * 4096
    assert tree_rss_bytes(77, proc=tmp_path, page_size=4096) is None
    assert tree_rss_bytes(10, proc=tmp_path / "missing") is None


def test_tree_rss_does_not_count_a_child_caught_between_fork_and_exec(tmp_path):
    """The JVM spawning a helper: for an instant the child (not exec'd yet, same address space)
    reports the JVM's whole resident set. A forked child that has its own address space counts."""
    tree = {
        10: ("python", 1, 100, 0x400000, 5_000),
        11: ("java", 10, 1_000, 0x400000, 9_000),
        12: ("Thread-4", 11, 1_000, 0x400040, 9_000),  # forked, no exec yet, same vsize: the JVM itself
        15: ("Thread-5", 11, 1_000, 0x400040, 9_050),  # the same, the JVM's size read a moment apart
        13: ("python", 11, 30, 0x400000, 700),  # a worker daemon
        14: ("python", 13, 30, 0x400040, 800),  # forked from it without exec, own address space now
    }
    for pid, (comm, ppid, rss, flags, vsize) in tree.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(_stat(pid, comm, ppid, rss, flags, vsize))
    assert tree_rss_bytes(10, proc=tmp_path, page_size=1) == 100 + 1_000 + 30 + 30


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_tree_rss_of_this_process_is_at_least_its_own_rss():
    own_pages = int(open("/proc/self/statm").read().split()[1])
    assert tree_rss_bytes(os.getpid()) >= own_pages * os.sysconf("SC_PAGE_SIZE") * 0.5


def test_sampler_peak_between_resets():
    values = iter([5, 30, 20, 7, 3, 4])
    sampler = PeakMemorySampler(pid=1, sample=lambda pid: next(values))
    for _ in range(3):
        sampler.sample_now()  # 5, 30, 20
    assert sampler.reset() == 30  # samples 7 on reset too
    sampler.sample_now()  # 3
    assert sampler.reset() == 4  # 3, then 4 on reset


def test_sampler_thread_samples_in_background():
    calls = []
    with PeakMemorySampler(pid=1, interval_s=0.01, sample=lambda pid: calls.append(pid) or len(calls)) as s:
        while len(calls) < 5:
            pass
    peak = s.reset()
    assert peak >= 5


def test_landed_records_counts_only_the_benchmarked_days():
    records = {"orders": {"2026-11-01": 10, "2026-11-02": 20, "2026-11-03": 40}, "returns": {"2026-11-02": 3}}
    assert landed_records(records, ["2026-11-01", "2026-11-02"]) == {
        "by_source": {"orders": 30, "returns": 3},
        "total": 33,
    }


def _two_days():
    steps = [
        StepFigures("bronze__orders", "success", 10.0, 1000, 1000, 100.0, 2.0, 2, ["bronze/orders"]),
        StepFigures("kpi_tables", "success", 30.0, None, 12, 0.4, 6.0, 4, ["gold/kpi_daily"]),
    ]
    later = [
        StepFigures("bronze__orders", "success", 20.0, 1000, 1000, 50.0, 4.0, 2, ["bronze/orders"]),
        StepFigures("kpi_tables", "success", 50.0, None, 12, 0.24, 2.0, 4, ["gold/kpi_daily"]),
    ]
    return [
        DayFigures("2026-11-01", "r1", True, 40.0, 8.0, 0.2, 2**30, steps, jvm_gc_s=1.23456, cached_bytes=5),
        DayFigures("2026-11-02", "r2", True, 70.0, 6.0, 6 / 70, None, later),
    ]


def test_csv_one_row_per_day_and_step(tmp_path):
    path = tmp_path / "bench.csv"
    write_csv(path, csv_rows("S", 1000, _two_days()))
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    rows = list(csv.DictReader(lines))
    assert [(r["dt"], r["day_index"], r["step"]) for r in rows] == [
        ("2026-11-01", "1", "bronze__orders"),
        ("2026-11-01", "1", "kpi_tables"),
        ("2026-11-02", "2", "bronze__orders"),
        ("2026-11-02", "2", "kpi_tables"),
    ]
    assert rows[1]["rows_in"] == ""  # unknown stays empty, not 0
    assert rows[1]["rows_out"] == "12"
    assert rows[0]["day_peak_rss_bytes"] == str(2**30)
    assert rows[2]["day_peak_rss_bytes"] == ""
    assert (rows[0]["day_jvm_gc_s"], rows[0]["day_cached_bytes"]) == ("1.235", "5")
    assert (rows[2]["day_jvm_gc_s"], rows[2]["day_cached_bytes"]) == ("", "")  # no JVM figures
    assert rows[3]["day_ge_share"] == "0.0857"  # 6 / 70
    assert {r["scale"] for r in rows} == {"S"} and {r["orders_per_day"] for r in rows} == {"1000"}


def test_report_json_holds_machine_landed_summary_and_days():
    report = report_json(
        scale="M",
        orders_per_day=100_000,
        days=_two_days(),
        landed={"by_source": {"orders": 5}, "total": 5},
        machine=bench.machine_info(),
        extra={"date": "2026-11-25T00:00:00+00:00"},
    )
    text = json.dumps(report, default=str)
    back = json.loads(text)
    assert back["machine"]["cores"] == os.cpu_count()
    assert back["machine"]["pyspark"] and back["machine"]["delta_spark"]
    assert back["scale"] == "M" and back["orders_per_day"] == 100_000
    assert back["summary"]["total_wall_s"] == 110.0
    assert back["summary"]["ge_share"] == round(14 / 110, 4)
    assert [d["dt"] for d in back["days"]] == ["2026-11-01", "2026-11-02"]
    assert back["days"][0]["steps"][0]["rows_in"] == 1000


def test_mean_step_times_slowest_first():
    # bronze (10 + 20) / 2 = 15, GE (2 + 4) / 2 = 3; kpi (30 + 50) / 2 = 40, GE (6 + 2) / 2 = 4
    assert mean_step_times(_two_days()) == {"kpi_tables": (40.0, 4.0), "bronze__orders": (15.0, 3.0)}


def test_days_chart_is_svg_with_one_point_per_day():
    svg = svg_days_chart(
        ["2026-11-01", "2026-11-02", "2026-11-03"],
        {"day wall": [10.0, 30.0, 20.0], "GE": [1.0, 2.0, 3.0]},
        "t",
    )
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    lines = {p.get("data-series"): p.get("points").split() for p in root.iter(f"{SVG}polyline")}
    assert set(lines) == {"day wall", "GE"}
    assert len(lines["day wall"]) == 3
    ys = [float(p.split(",")[1]) for p in lines["day wall"]]
    assert ys[1] < ys[2] < ys[0]  # 30 s is highest on the page (smallest y), then 20, then 10
    xs = [float(p.split(",")[0]) for p in lines["day wall"]]
    assert xs == sorted(xs)
    assert "2026-11-03" in "".join(t.text or "" for t in root.iter(f"{SVG}text"))


def test_steps_chart_bars_proportional_to_seconds():
    root = ET.fromstring(svg_steps_chart({"kpi_tables": (40.0, 4.0), "bronze__orders": (10.0, 3.0)}, "t"))
    bars = {r.get("data-step"): float(r.get("width")) for r in root.iter(f"{SVG}rect") if r.get("data-step")}
    ge = {r.get("data-ge"): float(r.get("width")) for r in root.iter(f"{SVG}rect") if r.get("data-ge")}
    assert bars["kpi_tables"] == pytest.approx(4 * bars["bronze__orders"], abs=0.1)
    assert ge["kpi_tables"] == pytest.approx(bars["kpi_tables"] / 10, abs=0.1)


def test_write_plots_writes_two_valid_svgs(tmp_path):
    paths = write_plots(tmp_path / "bench_S_x", "S", _two_days())
    assert [p.name for p in paths] == ["bench_S_x_days.svg", "bench_S_x_steps.svg"]
    for path in paths:
        assert ET.parse(path).getroot().tag == f"{SVG}svg"


def test_prepare_roots_clears_only_its_own_benchmark_dirs(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(SystemExit):
        prepare_roots(BenchRoots.under(foreign), clear_landing=True, clear_outputs=True)
    assert (foreign / "keep.txt").exists()

    roots = BenchRoots.under(tmp_path / "bench")
    prepare_roots(roots, clear_landing=True, clear_outputs=True)
    (roots.landing / "orders").mkdir()
    (roots.warehouse / "silver").mkdir()
    (roots.dagster_home / "runs.db").write_text("")
    prepare_roots(roots, clear_landing=False, clear_outputs=True)  # --skip-generate
    assert (roots.landing / "orders").exists()
    assert not (roots.warehouse / "silver").exists()
    assert (roots.dagster_home / "runs.db").exists()
    assert roots.env()["ONETRACK_WAREHOUSE_DIR"] == str(tmp_path / "bench" / "warehouse")
    assert roots.env()["DAGSTER_HOME"] == str(tmp_path / "bench" / "dagster_home")


def test_cli_bench_arguments_reach_run_bench(monkeypatch):
    seen = {}
    monkeypatch.setattr(bench, "run_bench", lambda **kw: seen.update(kw) or 0)
    assert cli.main(["bench", "--scale", "M", "--days", "3"]) == 0
    assert seen["orders_per_day"] == 100_000
    assert seen["days"] == 3 and seen["start"] == dt.date(2026, 11, 1)
    assert str(seen["out"]) == os.path.join("data", "bench", "M")
    assert (
        cli.main(["bench", "--scale", "L", "--orders-per-day", "250", "--skip-generate", "--out", "x"]) == 0
    )
    assert (seen["orders_per_day"], seen["skip_generate"], seen["out"]) == (250, True, "x")
    with pytest.raises(SystemExit):
        cli.main(["bench", "--days", "0"])


def test_run_day_reports_like_onetrack_run():
    """run_day (shared by ``run`` and ``bench``) still prints and judges a day as before."""
    from dagster import AssetCheckSeverity

    def ev(kind, data=None, step=None):
        return SimpleNamespace(event_type_value=kind, event_specific_data=data, step_key=step)

    def check(name, passed, severity):
        return SimpleNamespace(
            asset_key=AssetKey(["silver", "orders"]), check_name=name, passed=passed, severity=severity
        )

    events = [
        ev("ASSET_MATERIALIZATION"),
        ev("ASSET_CHECK_EVALUATION", check("a", True, AssetCheckSeverity.ERROR)),
        ev("ASSET_CHECK_EVALUATION", check("b", False, AssetCheckSeverity.WARN)),
        ev("ASSET_CHECK_EVALUATION", check("c", False, AssetCheckSeverity.ERROR)),
    ]
    result = SimpleNamespace(success=True, all_events=events, run_id="r1")
    job = SimpleNamespace(name="onetrack_daily", execute_in_process=lambda **kw: result)
    lines = []
    ok, got = cli.run_day(job, None, dt.date(2026, 11, 1), log=lines.append)
    assert (ok, got) == (False, result)
    assert lines[0] == "[2026-11-01] running onetrack_daily ..."
    assert lines[1].startswith("[2026-11-01] FAILED: 1 assets, 3 checks (1 warnings) in ")
    assert lines[2:] == [
        "  warning: check silver/orders:b did not pass",
        "  FAILED critical check silver/orders:c",
    ]


def test_figures_from_a_real_dagster_event_log():
    """The same path as the benchmark (instance.all_logs -> records -> figures) on a tiny job, no Spark."""
    import time

    import dagster as dg

    @dg.asset(check_specs=[dg.AssetCheckSpec("suite", asset="landed")])
    def landed():
        time.sleep(0.2)
        yield dg.MaterializeResult(metadata={"rows": dg.MetadataValue.int(10), "records_read": 12})
        yield dg.AssetCheckResult(
            check_name="suite", passed=True, metadata={"elapsed_seconds": dg.MetadataValue.float(0.05)}
        )

    @dg.asset(deps=[landed])
    def derived():
        return dg.MaterializeResult(metadata={"rows": 4})

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([landed, derived], instance=instance)
    records = event_records(instance.all_logs(result.run_id))
    steps = by_step(step_figures(records, {"derived": ["landed"]}))
    assert set(steps) == {"landed", "derived"}
    assert (steps["landed"].rows_in, steps["landed"].rows_out, steps["landed"].checks) == (12, 10, 1)
    assert steps["landed"].ge_s == 0.05
    assert 0.2 <= steps["landed"].wall_s < 5
    assert (steps["derived"].rows_in, steps["derived"].rows_out) == (10, 4)
    assert day_figures("d", result.run_id, True, records, {}, None).wall_s >= steps["landed"].wall_s


def test_printed_day_table_keeps_columns_aligned_with_blanks():
    from pipelines.bench import format_day

    day = _two_days()[0]
    text = format_day(day)
    lines = text.splitlines()
    header, bronze, kpi = lines[1], lines[2], lines[3]
    assert len(bronze) == len(kpi) == len(header)  # kpi_tables has no rows in: blank, not shifted
    assert bronze.split() == ["bronze__orders", "success", "10.0", "1,000", "1,000", "100", "2.0", "2"]
    assert kpi.split() == ["kpi_tables", "success", "30.0", "12", "0", "6.0", "4"]
    assert kpi[header.index("rows_out") : header.index("rows_out") + 8].strip() == "12"
    assert "GE checks 8.0s (20.0% of the day)" in lines[-1] and "1,024 MB" in lines[-1]


def test_run_bench_generates_in_a_child_and_keeps_the_figures_of_a_stopped_run(tmp_path, monkeypatch):
    """run_bench end to end without Spark: the landing zone is generated (in a child process), each
    day goes through ``run_day``, and the CSV/JSON are on disk after every day, so a run that stops
    (here: day 2 fails) keeps the figures of the days it ran."""
    import dagster as dg

    from pipelines import bench

    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2026-11-01"))
    def landed():
        return dg.MaterializeResult(metadata={"rows": 3})

    instance = dg.DagsterInstance.ephemeral()
    ran = []

    on_disk_before = {}

    def fake_run_day(job, inst, day, log=print):
        ran.append(day)
        on_disk_before[day] = [
            [d["dt"] for d in json.loads(f.read_text())["days"]] for f in tmp_path.glob("bench_S_*.json")
        ]
        result = dg.materialize([landed], instance=inst, partition_key=day.isoformat())
        return day != dt.date(2026, 11, 2), result

    monkeypatch.setattr(cli, "daily_job_and_instance", lambda: (None, instance))
    monkeypatch.setattr(cli, "run_day", fake_run_day)
    for key in ("ONETRACK_LANDING_DIR", "ONETRACK_WAREHOUSE_DIR", "ONETRACK_SETTLEMENT_DIR", "DAGSTER_HOME"):
        monkeypatch.setenv(key, os.environ.get(key, ""))  # run_bench points them at tmp_path
    lines = []
    code = bench.run_bench(
        scale="S", orders_per_day=20, start=dt.date(2026, 11, 1), days=3, out=tmp_path, log=lines.append
    )
    assert code == 1
    assert ran == [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]  # stopped after the failed day
    # day 1's figures were on disk before day 2 ran (a killed run keeps them)
    assert on_disk_before == {dt.date(2026, 11, 1): [], dt.date(2026, 11, 2): [["2026-11-01"]]}
    assert (tmp_path / "landing" / "_generator" / "summary.json").exists()
    (report_file,) = tmp_path.glob("bench_S_*.json")
    report = json.loads(report_file.read_text())
    assert [d["dt"] for d in report["days"]] == ["2026-11-01", "2026-11-02"]
    assert [d["ok"] for d in report["days"]] == [True, False]
    assert report["landed_records"]["by_source"]["orders"] > 0
    assert report["generation_s"] is not None
    with report_file.with_suffix(".csv").open() as f:
        assert {r["dt"] for r in csv.DictReader(f)} == {"2026-11-01", "2026-11-02"}


def test_history_days_are_a_range_of_day_numbers():
    assert bench.history_range("6-27") == (6, 27)
    assert bench.history_range("3") == (3, 3)
    for bad in ("0-4", "9-2", "a-b", "5-"):
        with pytest.raises(ValueError):
            bench.history_range(bad)


def test_cli_history_days_reach_run_bench(monkeypatch):
    seen = {}
    monkeypatch.setattr(bench, "run_bench", lambda **kw: seen.update(kw) or 0)
    assert cli.main(["bench", "--scale", "M", "--days", "30", "--history-days", "6-27"]) == 0
    assert seen["history_days"] == (6, 27)
    assert cli.main(["bench", "--days", "3"]) == 0 and seen["history_days"] is None
    with pytest.raises(SystemExit):
        cli.main(["bench", "--history-days", "7-2"])


def test_day30_over_day5_only_between_days_run_with_their_checks():
    walls = [100.0, 90.0, 90.0, 90.0, 50.0, 20.0, 60.0]
    days = [_day(f"2026-11-0{i}", w, 1.0, None) for i, w in enumerate(walls, start=1)]
    assert summarize(days)["last_over_day5"] == 1.2  # 60 / 50
    history = [replace(d, checks_run=False) if i == 5 else d for i, d in enumerate(days)]
    assert summarize(history)["last_over_day5"] == 1.2  # a history day between them: fine
    for unchecked in (4, 6):  # day 5 or the last day without its checks: not comparable
        changed = [replace(d, checks_run=False) if i == unchecked else d for i, d in enumerate(days)]
        assert summarize(changed)["last_over_day5"] is None
    assert "[history day: run without its checks]" in format_day(replace(days[5], checks_run=False))


def test_the_history_job_runs_every_asset_of_the_daily_job_and_no_check():
    from pipelines.definitions import defs

    job, _ = cli.daily_job_and_instance()
    history = bench.job_without_checks(defs, job)
    daily_graph, history_graph = job.asset_layer.asset_graph, history.asset_layer.asset_graph
    assert history.name == "onetrack_daily_without_checks"
    assert set(history_graph.get_all_asset_keys()) == set(daily_graph.get_all_asset_keys())
    assert len(daily_graph.asset_check_keys) > 40  # every GE suite and landing check
    assert not history_graph.asset_check_keys


def test_unopened_days_names_the_days_past_the_last_partition_and_a_range_that_fits():
    import dagster as dg

    partitions = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-10")  # last: 11-09
    keys = [f"2026-11-{d:02d}" for d in range(5, 10)]
    assert bench.unopened_days(keys, partitions) is None
    problem = bench.unopened_days([f"2026-11-{d:02d}" for d in range(8, 13)], partitions)
    assert "2026-11-10..2026-11-12 (3 of the 5 days)" in problem
    assert "the last is 2026-11-09" in problem and "--from 2026-11-05 --days 5" in problem


def test_run_bench_refuses_a_range_past_the_open_partitions_before_generating(tmp_path, monkeypatch):
    """A range ending today or later used to fail on its first unopened day, hours into a 30-day run."""
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "kept.txt").write_text("earlier landing")
    monkeypatch.setattr(bench, "_generate_records", lambda *a, **k: pytest.fail("generated"))
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    with pytest.raises(SystemExit, match=f"{tomorrow.isoformat()}.*not daily partitions yet"):
        bench.run_bench(
            scale="S", orders_per_day=20, start=tomorrow - dt.timedelta(days=3), days=4, out=tmp_path
        )
    assert (tmp_path / "landing" / "kept.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]


def test_weekly_maintenance_follows_each_saturday_but_the_last_day():
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(21)]  # Sun 11-01 .. Sat 11-21
    assert bench.maintenance_days(days, "weekly") == {dt.date(2026, 11, 7), dt.date(2026, 11, 14)}
    assert bench.maintenance_days(days[:14], "weekly") == {dt.date(2026, 11, 7)}  # ends on Saturday 11-14
    assert bench.maintenance_days(days, "none") == set()
    with pytest.raises(ValueError):
        bench.maintenance_days(days, "daily")


def _fake_maintenance_job(files_before=40, files_after=12, fail=False):
    import dagster as dg

    @dg.op
    def compact():
        if fail:
            raise RuntimeError("OPTIMIZE failed")
        return dg.Output(
            3, metadata={"tables": 3, "files_before": files_before, "files_after": files_after}
        )

    @dg.job(name="fake_maintenance")
    def maintenance():
        compact()

    return maintenance


def test_run_maintenance_reports_time_and_files_from_the_jobs_output():
    import dagster as dg

    instance, lines = dg.DagsterInstance.ephemeral(), []
    run = bench.run_maintenance(_fake_maintenance_job(), instance, dt.date(2026, 11, 7), log=lines.append)
    assert (run["ok"], run["tables"], run["files_before"], run["files_after"]) == (True, 3, 40, 12)
    assert run["after_day"] == "2026-11-07" and run["wall_s"] > 0
    assert lines[-1].startswith("[2026-11-07] maintenance ok in") and lines[-1].endswith("40 -> 12 files")
    failing = _fake_maintenance_job(fail=True)
    failed = bench.run_maintenance(failing, instance, dt.date(2026, 11, 7), log=print)
    assert not failed["ok"] and failed["files_before"] == 0


def test_run_bench_runs_the_weekly_maintenance_between_the_days_and_reports_it_apart(tmp_path, monkeypatch):
    import dagster as dg

    from pipelines import bench

    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2026-11-01"))
    def landed():
        return dg.MaterializeResult(metadata={"rows": 3})

    instance, ran = dg.DagsterInstance.ephemeral(), []

    def fake_run_day(job, inst, day, log=print):
        ran.append(day.isoformat())
        return True, dg.materialize([landed], instance=inst, partition_key=day.isoformat())

    def fake_maintenance(job, inst, after, log=print):
        ran.append(f"maintenance after {after}")
        return {"after_day": after.isoformat(), "run_id": "r", "ok": True, "wall_s": 1.5, "tables": 3,
                "files_before": 40, "files_after": 12}  # fmt: skip

    monkeypatch.setattr(cli, "daily_job_and_instance", lambda: (None, instance))
    monkeypatch.setattr(cli, "run_day", fake_run_day)
    monkeypatch.setattr(bench, "_maintenance_job", lambda defs: None)
    monkeypatch.setattr(bench, "run_maintenance", fake_maintenance)
    for key in ("ONETRACK_LANDING_DIR", "ONETRACK_WAREHOUSE_DIR", "ONETRACK_SETTLEMENT_DIR", "DAGSTER_HOME"):
        monkeypatch.setenv(key, os.environ.get(key, ""))
    code = bench.run_bench(
        scale="S", orders_per_day=20, start=dt.date(2026, 11, 6), days=3, out=tmp_path, log=print,
        maintenance="weekly",
    )  # fmt: skip
    assert code == 0
    assert ran == ["2026-11-06", "2026-11-07", "maintenance after 2026-11-07", "2026-11-08"]
    (report_file,) = tmp_path.glob("bench_S_*.json")
    report = json.loads(report_file.read_text())
    assert report["maintenance"] == "weekly"
    assert [(r["after_day"], r["files_after"]) for r in report["maintenance_runs"]] == [("2026-11-07", 12)]
    assert "peak_rss_bytes" in report["maintenance_runs"][0]
    assert [d["dt"] for d in report["days"]] == ["2026-11-06", "2026-11-07", "2026-11-08"]


def test_cli_maintenance_reaches_run_bench(monkeypatch):
    seen = {}
    monkeypatch.setattr(bench, "run_bench", lambda **kw: seen.update(kw) or 0)
    assert cli.main(["bench", "--days", "30", "--maintenance", "weekly"]) == 0
    assert seen["maintenance"] == "weekly"
    assert cli.main(["bench", "--days", "3"]) == 0 and seen["maintenance"] == "none"
    with pytest.raises(SystemExit):
        cli.main(["bench", "--maintenance", "daily"])


def test_jvm_state_counts_gc_pauses_and_the_blocks_spark_holds(spark):
    from types import SimpleNamespace

    from pipelines.bench import jvm_state

    assert jvm_state(SimpleNamespace(_jvm=None)) is None  # no driver JVM here (Spark Connect)
    scala_context = spark.sparkContext._jsc.sc()

    def stored() -> dict[int, int]:
        return {i.id(): i.memSize() + i.diskSize() for i in scala_context.getRDDStorageInfo()}

    before_ids, before = set(stored()), jvm_state(spark.sparkContext)
    frame = spark.range(200_000).selectExpr("id", "cast(id as string) AS s").localCheckpoint(eager=True)
    held = jvm_state(spark.sparkContext)
    # the checkpoint's blocks are counted (other tests' blocks may be released meanwhile: not compared)
    new_blocks = sum(size for rdd, size in stored().items() if rdd not in before_ids)
    assert new_blocks > 0 and held.cached_bytes >= new_blocks
    spark.sparkContext._jvm.java.lang.System.gc()  # a full collection: a pause of its own
    after = jvm_state(spark.sparkContext)
    assert after.gc_pause_s > before.gc_pause_s >= 0
    del frame
