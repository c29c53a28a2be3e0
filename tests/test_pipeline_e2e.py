"""End to end: generate days with every fault, run them through the Dagster job, check SPEC §3.

One module-scoped run (the expensive part) serves every test here.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from assets.finance.ledger import allocation_table
from assets.ingest.contracts import CONTRACTS
from assets.storage import read_table

pytestmark = pytest.mark.slow

from tests.conftest import E2E_DAYS as DAYS


def test_every_day_succeeds(pipeline):
    assert pipeline["ok"], "\n".join(pipeline["log"])


def _landed_records(landing: Path, source: str, day: dt.date, unreadable: set[str]) -> int:
    """Count records in the landing files directly (independently of the pipeline's readers)."""
    total = 0
    for path in sorted((landing / source / f"dt={day}").iterdir()):
        rel = f"{source}/dt={day}/{path.name}"
        if rel in unreadable:
            continue
        if path.suffix == ".parquet":
            total += pq.ParquetFile(path).metadata.num_rows
            continue
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        lines = [line for line in data.decode("utf-8").split("\n") if line.strip()]
        total += len(lines) - (1 if path.suffix == ".csv" else 0)
    return total


def test_conservation_per_source_and_day(spark, pipeline):
    cfg = pipeline["cfg"]
    landing = Path(cfg.landing_dir)
    faults = json.loads((landing / "_generator" / "faults.json").read_text())
    unreadable = {f["file"] for f in faults if f["rule"] == "file:unreadable"}
    audit = {(r.source, r.dt): r for r in read_table(spark, cfg.table_path("audit", "ingest_audit")).collect()}
    for source in CONTRACTS:
        for day in DAYS:
            if not (landing / source / f"dt={day}").exists():
                continue
            row = audit[(source, day)]
            assert row.records_read == _landed_records(landing, source, day, unreadable), (source, day)
            assert row.records_read == row.records_accepted + row.records_quarantined + row.records_duplicate
            assert row.files_read == row.files_accepted + row.files_quarantined
            silver = read_table(spark, cfg.table_path("silver", source)).filter(F.col("dt") == F.lit(day)).count()
            quarantine = (
                read_table(spark, cfg.table_path("quarantine", source)).filter(F.col("dt") == F.lit(day)).count()
            )
            assert (silver, quarantine) == (row.records_accepted, row.records_quarantined), (source, day)


def test_each_injected_fault_is_where_it_belongs(spark, pipeline):
    cfg = pipeline["cfg"]
    faults = json.loads((Path(cfg.landing_dir) / "_generator" / "faults.json").read_text())
    assert faults, "the generator injected no fault"
    quarantine, silver = {}, {}
    for source in CONTRACTS:
        for r in read_table(spark, cfg.table_path("quarantine", source)).collect():
            quarantine[(r.source_file, r.line_number)] = r.rule
        for r in read_table(spark, cfg.table_path("silver", source)).select("source_file", "line_number").collect():
            silver[(r.source_file, r.line_number)] = True
    files = {r.source_file: r for r in read_table(spark, cfg.table_path("bronze", "landing_files")).collect()}
    kinds = set()
    for fault in faults:
        where = (fault["file"], fault["line"])
        kinds.add(fault["fault"])
        if fault["rule"] == "file:unreadable":
            assert files[fault["file"]].status == "quarantined", fault
        elif fault["rule"] == "duplicate":
            assert where not in silver and where not in quarantine, fault
        elif fault["rule"] is not None:
            assert quarantine.get(where) == fault["rule"], fault
        elif fault["line"] is not None:
            assert where in silver, fault
    assert len(kinds) >= 15, sorted(kinds)


def test_silver_keys_are_unique(spark, pipeline):
    cfg = pipeline["cfg"]
    for source, contract in CONTRACTS.items():
        df = read_table(spark, cfg.table_path("silver", source))
        key = list(contract.duplicate_columns)
        assert df.groupBy(*key).count().filter("count > 1").count() == 0, source
        versions = ["source_file", "line_number"]
        assert df.groupBy(*versions).count().filter("count > 1").count() == 0, source


def test_rerunning_a_partition_changes_no_row(spark, pipeline, monkeypatch):
    from pipelines.cli import run_days

    cfg = pipeline["cfg"]
    tables = [(layer, s) for s in CONTRACTS for layer in ("bronze", "silver", "quarantine")]
    tables += [("audit", "ingest_audit"), ("bronze", "landing_files")]

    def snapshot():
        out = {}
        for t in tables:
            df = read_table(spark, cfg.table_path(*t))
            df = df.drop("fields") if "fields" in df.columns else df
            out[t] = sorted(map(str, df.collect()))
        return out

    def settlement_bytes():
        root = Path(cfg.settlement_dir)
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.csv"))}

    tables += [("finance", "ad_fee_refund_ledger")]
    before, files_before = snapshot(), settlement_bytes()
    assert run_days([DAYS[1]], log=lambda *_: None)
    assert snapshot() == before
    assert settlement_bytes() == files_before

    # Again without the checks (the job of the benchmark's history days): every asset is written,
    # no check runs, nothing is computed only for a check, and the rows and files are the same.
    import assets.finance.assets as finance_assets
    import assets.serving.assets as serving_assets
    from pipelines.bench import job_without_checks

    def only_for_checks(*_args, **_kwargs):
        raise AssertionError("a frame only the checks read was built in a run without them")

    import assets.kpi.assets as kpi_assets

    monkeypatch.setattr(finance_assets, "returns_out_of_scope", only_for_checks)
    monkeypatch.setattr(finance_assets, "ledger_check_frame", only_for_checks)
    monkeypatch.setattr(finance_assets, "check_frame", only_for_checks)
    monkeypatch.setattr(kpi_assets, "check_frame", only_for_checks)
    monkeypatch.setattr(serving_assets, "expected_row_counts", only_for_checks)
    from pipelines.cli import daily_job_and_instance, run_day
    from pipelines.definitions import defs

    job, instance = daily_job_and_instance()
    ok, result = run_day(job_without_checks(defs, job), instance, DAYS[1], log=lambda *_: None)
    assert ok and result.get_asset_check_evaluations() == []
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == set(job.asset_layer.asset_graph.get_all_asset_keys())
    assert snapshot() == before
    assert settlement_bytes() == files_before


def test_after_the_first_day_the_carried_tables_are_validated_by_what_the_day_changed(pipeline):
    from quality.runner import passed_validation, validations_dir

    root = validations_dir(pipeline["cfg"].warehouse_dir)
    snapshots = [
        "order_attribution_keys",
        "gold_order_reexposure_contract",
        "ad_fee_allocation_sums_to_spend",
    ]
    suites = [*snapshots, "ad_fee_refund_ledger_order_cap"]
    first, last, before = DAYS[0], DAYS[-1], DAYS[-2]
    validated = {
        (suite, day): (passed_validation(root, suite, day.isoformat()) or {}).get("validated", "failed")
        for suite in suites
        for day in (first, last)
    }
    for snapshot in snapshots:
        assert validated[(snapshot, first)] == f"the whole snapshot as of {first}"
        changed = f"rows written as of {last} on the snapshot as of {before} (version"
        assert changed in validated[(snapshot, last)], snapshot
    assert validated[(suites[-1], first)] == f"the whole ledger through {first}"
    assert validated[(suites[-1], last)] == (
        f"every entry of the orders with an entry settled on {last} (the ledger through {before} passed)"
    )


def test_allocated_fees_add_up_to_spend(spark, pipeline):
    cfg = pipeline["cfg"]
    alloc = allocation_table(spark, cfg).read(DAYS[-1])
    per_day = (
        alloc.filter(F.col("order_id").isNotNull())
        .groupBy("stat_date", "campaign_id")
        .agg(F.sum("allocated_ad_fee").alias("fees"), F.max("campaign_spend").alias("spend"))
        .collect()
    )
    assert per_day, "no attributed campaign-day in the sample"
    for row in per_day:
        assert row.fees == row.spend, row


def test_ledger_never_refunds_more_than_the_fee(spark, pipeline):
    cfg = pipeline["cfg"]
    ledger = read_table(spark, cfg.table_path("finance", "ad_fee_refund_ledger"))
    assert ledger.groupBy("return_id", "entry_type").count().filter("count > 1").count() == 0
    over = (
        ledger.groupBy("order_id")
        .agg(F.sum("ad_fee_refund").alias("refunded"), F.max("allocated_ad_fee").alias("fee"))
        .filter(F.col("refunded") > F.col("fee"))
    )
    assert over.count() == 0
    assert ledger.filter((F.col("entry_type") == "refund") & (F.col("ad_fee_refund") < 0)).count() == 0


def test_settlement_files_published_and_verified_every_day(pipeline):
    from assets.finance.settlement_files import list_published, verify_day

    cfg = pipeline["cfg"]
    published = {d["date"]: d for d in list_published(cfg.settlement_dir)}
    for day in DAYS:
        assert published[day.isoformat()]["status"] == "published"
        assert verify_day(cfg.settlement_dir, day) == []


def test_serving_file_opens_read_only_without_extensions(pipeline):
    import duckdb

    path = Path(pipeline["cfg"].warehouse_dir) / "serving" / "kpi.duckdb"
    con = duckdb.connect(str(path), read_only=True, config={"autoload_known_extensions": False})
    tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    assert {"kpi_daily", "kpi_merchant_daily", "kpi_campaign_daily", "return_attribution_daily",
            "ad_fee_refund_ledger"} <= tables
    days = con.execute("select count(*), max(as_of) from kpi_daily").fetchone()
    assert days[0] >= 1 and days[1] == DAYS[-1]
    con.close()
