"""assets.storage: partition-scoped writes and the partitions a table holds, read from its log."""

from __future__ import annotations

import datetime as dt
import json
import shutil

from assets.storage import (
    partition_dates,
    partition_values,
    replace_partition,
    table_id,
    table_properties,
    table_version,
)

D1, D2, D3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def _snapshot(spark, day, orders=("o1",)):
    return spark.createDataFrame([(day, o) for o in orders], "as_of date, order_id string")


def test_replace_partition_rewrites_only_its_partition_and_tags_the_commit(spark, tmp_path):
    from delta.tables import DeltaTable

    path = str(tmp_path / "snapshots")
    replace_partition(_snapshot(spark, D1, ("a", "b")), path, {"as_of": D1})
    version = replace_partition(_snapshot(spark, D2), path, {"as_of": D2})
    again = replace_partition(_snapshot(spark, D1, ("c",)), path, {"as_of": D1})
    assert again == version + 1
    rows = sorted((r.as_of, r.order_id) for r in spark.read.format("delta").load(path).collect())
    assert rows == [(D1, "c"), (D2, "o1")]  # D1 replaced, D2 untouched
    last = DeltaTable.forPath(spark, path).history(1).select("userMetadata").first()[0]
    assert json.loads(last) == {"partition": {"as_of": D1.isoformat()}}


def test_partition_dates_come_from_the_current_files_of_the_log(spark, tmp_path):
    """The partitions a table holds are read from its file list (not by scanning its rows), and
    reflect the table as it is now: a partition deleted since does not count."""
    from delta.tables import DeltaTable

    path = str(tmp_path / "listed")
    for day in (D1, D2, D3):
        replace_partition(_snapshot(spark, day), path, {"as_of": day})
    assert partition_values(spark, path, "as_of") == {D1.isoformat(), D2.isoformat(), D3.isoformat()}

    DeltaTable.forPath(spark, path).delete(f"as_of = DATE'{D2.isoformat()}'")
    assert partition_values(spark, path, "as_of") == {D1.isoformat(), D3.isoformat()}
    assert partition_dates(spark, path, "as_of") == {D1, D3}


def _jobs_started(spark) -> int:
    return spark.sparkContext._jsc.sc().dagScheduler().nextJobId()


def test_table_version_id_and_properties_are_read_from_the_log_as_it_is_now(spark, tmp_path):
    """What DESCRIBE DETAIL and the history say, without their Spark jobs, and current after
    changes made outside this module (SQL), including a table created again at the same path."""
    from delta.tables import DeltaTable

    path = str(tmp_path / "meta")
    replace_partition(_snapshot(spark, D1, ("a", "b")), path, {"as_of": D1})
    retention = "'delta.logRetentionDuration' = 'interval 40 days'"
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({retention})")
    spark.sql(f"DELETE FROM delta.`{path}` WHERE order_id = 'b'")

    started = _jobs_started(spark)
    version, tid, props = table_version(spark, path), table_id(spark, path), table_properties(spark, path)
    assert _jobs_started(spark) == started  # no Spark job

    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    history = DeltaTable.forPath(spark, path).history().select("version").collect()
    assert version == max(r.version for r in history) == 2
    assert tid == detail["id"]
    assert props == dict(detail["properties"])
    assert props["delta.logRetentionDuration"] == "interval 40 days"

    shutil.rmtree(path)
    replace_partition(_snapshot(spark, D2), path, {"as_of": D2})
    assert table_version(spark, path) == 0
    assert table_id(spark, path) == spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["id"] != tid
    assert "delta.logRetentionDuration" not in table_properties(spark, path)
