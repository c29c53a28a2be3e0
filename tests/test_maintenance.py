"""Table maintenance: compaction leaves the content as it was with fewer files; the Dagster job
finds every table of the warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from assets.maintenance import (
    RETENTION_PROPERTY,
    maintain_table,
    maintain_warehouse,
    table_files,
    warehouse_tables,
)
from assets.storage import read_table, replace_partition


def _daily_appends(spark, path, days=3, writes_per_day=4):
    for d in range(days):
        day = dt.date(2026, 11, 1) + dt.timedelta(days=d)
        for w in range(writes_per_day):
            df = spark.range(w * 10, w * 10 + 10).selectExpr(
                "id", "cast(id * 1.25 as decimal(18,2)) AS amount", f"date'{day}' AS dt"
            )
            df.repartition(2).write.format("delta").mode("append").partitionBy("dt").save(path)


def test_compaction_keeps_content_and_cuts_files(spark, tmp_path):
    path = str(tmp_path / "warehouse" / "silver" / "events")
    _daily_appends(spark, path)
    before_rows = sorted(read_table(spark, path).collect())
    files_before, _ = table_files(spark, path)
    assert files_before >= 12  # 3 days x 4 appends, at least one file each

    result = maintain_table(spark, path, retain_hours=168)

    assert result["files_before"] == files_before
    assert result["files_after"] == 3  # one file per dt partition
    assert sorted(read_table(spark, path).collect()) == before_rows


def _parquet_files(path) -> int:
    return sum(1 for f in Path(path).rglob("*.parquet") if "_delta_log" not in f.parts)


def test_vacuum_keeps_the_removed_files_for_the_configured_hours(spark, tmp_path):
    """Delta (>= 4.0) ignores the hours given to VACUUM unless 0 and keeps removed files for the
    table's ``delta.deletedFileRetentionDuration``: the maintenance writes the configured hours
    there (once: no commit when it already says so), and VACUUM follows them."""
    path = str(tmp_path / "warehouse" / "silver" / "events")
    _daily_appends(spark, path, days=1, writes_per_day=3)
    on_disk = _parquet_files(path)
    assert on_disk >= 3

    maintain_table(spark, path, retain_hours=200)
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["properties"]
    assert properties[RETENTION_PROPERTY] == "interval 200 hours"
    assert _parquet_files(path) == on_disk + 1  # the compacted file added, the replaced ones kept
    maintain_table(spark, path, retain_hours=200)
    operations = [r["operation"] for r in DeltaTable.forPath(spark, path).history().collect()]
    assert operations.count("SET TBLPROPERTIES") == 1

    # 0 hours (Delta's safety check off, as an operator must do for it): the replaced files go.
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        maintain_table(spark, path, retain_hours=0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    assert spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["properties"][RETENTION_PROPERTY] == (
        "interval 0 hours"
    )
    assert _parquet_files(path) == 1
    assert read_table(spark, path).count() == 30


def test_warehouse_tables_and_the_job(spark, tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse"
    _daily_appends(spark, str(warehouse / "silver" / "a"), days=1, writes_per_day=3)
    gold = spark.range(3).selectExpr("id", "date'2026-11-01' AS as_of")
    replace_partition(gold, str(warehouse / "gold" / "b"), {"as_of": dt.date(2026, 11, 1)})
    (warehouse / "quality" / "validations").mkdir(parents=True)  # not a Delta table: skipped
    tables = warehouse_tables(spark, str(warehouse))
    assert [t.rsplit("/", 2)[-2:] for t in tables] == [["gold", "b"], ["silver", "a"]]

    monkeypatch.setenv("ONETRACK_WAREHOUSE_DIR", str(warehouse))
    from pipelines.maintenance import maintenance_job
    from pipelines.resources import default_resources

    result = maintenance_job.execute_in_process(resources=default_resources())
    assert result.success
    [materialization] = [
        e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"
    ]
    meta = materialization.event_specific_data.metadata
    assert meta["tables"].value == 2
    assert meta["files_after"].value == 2  # silver/a: 1 partition -> 1 file; gold/b: 1 file
    assert maintain_warehouse(spark, str(warehouse))[0]["files_after"] == 1


def test_a_split_partition_is_rewritten_into_files_of_the_target_size_per_value():
    """The layout rules of the split tables (silver/traffic), by hand: 1 GB of a day with 10 %
    clicks and a 256 MB target -> 1 click file (102 MB) and 4 impression files (922 MB / 256 MB,
    rounded up); a partition is rewritten when a file mixes values or a value has several small
    files, and not when each value already has files of the target size."""
    from assets.maintenance import files_per_value, needs_resplit

    mb = 1024 * 1024
    assert files_per_value(1024 * mb, {"click": 100, "impression": 900}, 256 * mb) == {
        "click": 1,
        "impression": 4,
    }
    assert files_per_value(10 * mb, {"click": 1, "impression": 9}, 256 * mb) == {"click": 1, "impression": 1}
    daily = [("click", "click", 3 * mb)] * 8 + [("impression", "impression", 22 * mb)] * 8
    assert needs_resplit(daily, 256 * mb)  # eight small files per value
    assert needs_resplit([("click", "impression", 200 * mb)], 256 * mb)  # written before the split
    compacted = [("click", "click", 18 * mb), ("impression", "impression", 160 * mb)]
    assert not needs_resplit(compacted, 256 * mb)
    big = [("click", "click", 100 * mb)] + [("impression", "impression", 230 * mb)] * 4
    assert not needs_resplit(big, 256 * mb)  # one small click file is fine; big files stay


def test_tables_are_maintained_at_once_in_table_order(monkeypatch):
    """``parallelism`` tables run side by side (three calls meet at a barrier, which a one-by-one
    run never passes), and the results come back in table order whatever order they finish in."""
    import threading
    import time

    import assets.maintenance as maintenance

    paths = [f"/w/layer/t{i}" for i in range(3)]
    monkeypatch.setattr(maintenance, "warehouse_tables", lambda spark, warehouse_dir: paths)

    def meeting_at(barrier):
        def fake_maintain(spark, path, **kwargs):
            barrier.wait()
            time.sleep(0.05 * (3 - int(path[-1])))  # t0 finishes last
            return {"table": path, "files_before": 2, "files_after": 1, "bytes_before": 2, "bytes_after": 1}

        return fake_maintain

    monkeypatch.setattr(maintenance, "maintain_table", meeting_at(threading.Barrier(3, timeout=10)))
    logged = []
    results = maintenance.maintain_warehouse(None, "/w", parallelism=3, log=logged.append)
    assert [r["table"] for r in results] == paths
    assert logged[-1].startswith("/w/layer/t0:")  # logged as they finished

    monkeypatch.setattr(maintenance, "maintain_table", meeting_at(threading.Barrier(3, timeout=1)))
    with pytest.raises(RuntimeError, match="3 of 3 tables failed"):  # one at a time: the barrier breaks
        maintenance.maintain_warehouse(None, "/w", parallelism=1)


def test_a_table_that_fails_is_named_and_the_others_are_still_maintained(spark, tmp_path):
    warehouse = tmp_path / "warehouse"
    for name in ("a", "c"):
        _daily_appends(spark, str(warehouse / "silver" / name), days=1, writes_per_day=3)
    (warehouse / "silver" / "b" / "_delta_log").mkdir(parents=True)  # not a readable Delta table
    logged = []
    try:
        maintain_warehouse(spark, str(warehouse), parallelism=3, log=logged.append)
    except RuntimeError as exc:
        assert "silver/b" in str(exc) and "1 of 3 tables" in str(exc)
    else:
        raise AssertionError("the broken table did not fail the maintenance")
    for name in ("a", "c"):
        assert table_files(spark, str(warehouse / "silver" / name))[0] == 1
        assert read_table(spark, str(warehouse / "silver" / name)).count() == 30
    assert sum("failed" in line for line in logged) == 1
