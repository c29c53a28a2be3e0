"""Versioned snapshots (assets/snapshots.py) on a four-row table, checked by hand.

Rows are (key k, partition date d, value v). Each day's expected snapshot is written out below;
the table must give it back as of that day, however later days, reruns and compaction moved the
table since.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from decimal import Decimal

import pytest
from delta.tables import DeltaTable
from pyspark.sql import types as T

from assets.maintenance import maintain_table
from assets.snapshots import SnapshotTable
from pipelines.config import OnetrackConfig

SCHEMA = T.StructType(
    [
        T.StructField("as_of", T.DateType()),
        T.StructField("k", T.StringType()),
        T.StructField("d", T.DateType()),
        T.StructField("v", T.DecimalType(18, 2)),
    ]
)
D1, D2, D3, D4 = (dt.date(2026, 11, n) for n in (1, 2, 3, 4))
SETTINGS = {"window_days": 7}


def _frame(spark, day, rows):
    return spark.createDataFrame([(day, k, dt.date(2026, 11, d), Decimal(v)) for k, d, v in rows], SCHEMA)


def _keys(spark, rows):
    return spark.createDataFrame([(k,) for k in rows], "k string")


def _rows(frame) -> dict:
    return {r["k"]: (r["as_of"], r["d"].day, str(r["v"])) for r in frame.collect()}


def _operations(table) -> list[str]:
    history = DeltaTable.forPath(table.spark, table.path).history().orderBy("version")
    return [r["operation"] for r in history.select("operation").collect()]


@pytest.fixture
def table(spark, tmp_path):
    cfg = OnetrackConfig(warehouse_dir=str(tmp_path))
    return SnapshotTable(spark, cfg, ("finance", "t"), SCHEMA, key="k", partition_by="d", change_feed=True)


def test_each_day_reads_back_its_own_snapshot_after_later_days_reruns_and_compaction(spark, table):
    table.write_full(_frame(spark, D1, [("a", 1, "1.00"), ("b", 1, "2.00"), ("c", 2, "3.00")]), D1, SETTINGS)
    day1 = {"a": (D1, 1, "1.00"), "b": (D1, 1, "2.00"), "c": (D1, 2, "3.00")}
    assert _rows(table.read(D1)) == day1
    assert table.read(D1).columns == SCHEMA.fieldNames()
    assert table.base_before(D2, SETTINGS) == D1
    assert table.base_before(D2, {"window_days": 8}) is None  # other settings: from scratch

    # D2: b changes, c is rewritten the same, e is new, a is removed.
    upserts = _frame(spark, D2, [("b", 1, "2.50"), ("c", 2, "3.00"), ("e", 3, "5.00")])
    written = table.write_changes(D1, D2, upserts, _keys(spark, ["a"]), SETTINGS)
    assert (written["rows_written"], written["keys_removed"]) == (3, 1)
    day2 = {"b": (D2, 1, "2.50"), "c": (D2, 2, "3.00"), "e": (D2, 3, "5.00")}
    assert _rows(table.read(D2)) == day2
    assert _rows(table.read(D1)) == day1  # time travel: D1 is still what it was

    # D3: nothing upserted; the rows of partition dates before 11-02 leave the scope (b).
    table.write_changes(D2, D3, upserts.limit(0), _keys(spark, []), SETTINGS, drop_below=dt.date(2026, 11, 2))
    day3 = {"c": (D3, 2, "3.00"), "e": (D3, 3, "5.00")}
    assert _rows(table.read(D3)) == day3
    assert table.dates() == {D1, D2, D3}

    # A rerun of D2 with other changes: the table is restored to D1 first, D3 keeps its version.
    rerun = _frame(spark, D2, [("b", 1, "2.75")])
    table.write_changes(D1, D2, rerun, _keys(spark, []), SETTINGS)
    assert _rows(table.read(D2)) == {"a": (D2, 1, "1.00"), "b": (D2, 1, "2.75"), "c": (D2, 2, "3.00")}
    assert _rows(table.read(D3)) == day3
    assert _operations(table).count("RESTORE") == 1

    # D4 builds on D3: the table holds the rerun of D2, so it is restored to D3 first.
    d4_rows = _frame(spark, D4, [("f", 4, "6.00"), ("g", 3, "7.00")])
    table.write_changes(D3, D4, d4_rows, _keys(spark, ["c"]), SETTINGS)
    day4 = {"e": (D4, 3, "5.00"), "f": (D4, 4, "6.00"), "g": (D4, 3, "7.00")}
    assert _rows(table.read(D4)) == day4
    assert _operations(table).count("RESTORE") == 2
    # The maintenance job: the VACUUM retention as a table property (set before the files are
    # rewritten, with any other property the table lacks), compaction (e and g: one file),
    # VACUUM; none of them changes a row.
    before = len(_operations(table))
    maintain_table(spark, table.path, retain_hours=200)
    maintenance = _operations(table)[before:]
    assert maintenance[:2] == ["SET TBLPROPERTIES", "OPTIMIZE"]
    assert set(maintenance[2:]) <= {"VACUUM START", "VACUUM END"}  # logged where Delta logs them

    # D5 on D4 after the maintenance: applied on top of it, no restore.
    d5 = dt.date(2026, 11, 5)
    table.write_changes(D4, d5, _frame(spark, d5, [("e", 3, "5.50")]), _keys(spark, []), SETTINGS)
    assert _operations(table).count("RESTORE") == 2
    assert _rows(table.read(d5)) == {"e": (d5, 3, "5.50"), "f": (d5, 4, "6.00"), "g": (d5, 3, "7.00")}
    assert _rows(table.read(D4)) == day4
    assert _rows(table.read_many([D3, d5]).filter(f"as_of = DATE'{D3}'")) == day3


def test_a_table_created_again_does_not_offer_the_versions_of_the_old_one(spark, table):
    table.write_full(_frame(spark, D1, [("a", 1, "1.00")]), D1, SETTINGS)
    table.write_changes(D1, D2, _frame(spark, D2, [("b", 1, "2.00")]), _keys(spark, []), SETTINGS)
    shutil.rmtree(table.path)  # e.g. deleted by hand to recompute everything
    assert table.dates() == set()
    table.write_full(_frame(spark, D3, [("c", 2, "3.00")]), D3, SETTINGS)  # version 0 again
    assert table.dates() == {D3}
    assert table.read(D1) is None and table.read(D2) is None
    assert _rows(table.read(D3)) == {"c": (D3, 2, "3.00")}


def test_an_object_reads_the_map_once_and_again_after_its_own_writes(spark, table):
    """One object per step: it reads the version map once, not on every question, and reads it
    again after it writes; a second object (another step) reads the map as it is then."""
    table.write_full(_frame(spark, D1, [("a", 1, "1.00")]), D1, SETTINGS)
    assert table.dates() == {D1}
    other = dataclasses.replace(table)  # same table, a map not read yet
    other.write_changes(D1, D2, _frame(spark, D2, [("b", 1, "2.00")]), _keys(spark, []), SETTINGS)
    assert table.dates() == {D1}  # read before the other object wrote
    assert dataclasses.replace(table).dates() == {D1, D2}
    table.write_changes(D1, D3, _frame(spark, D3, [("c", 2, "3.00")]), _keys(spark, []), SETTINGS)
    assert table.dates() == {D1, D2, D3}  # its own write: read again
    assert _rows(table.read(D3)) == {"a": (D3, 1, "1.00"), "c": (D3, 2, "3.00")}


def test_versions_older_than_the_vacuum_retention_are_not_offered(spark, tmp_path):
    def table_with(retain_hours):
        cfg = OnetrackConfig(warehouse_dir=str(tmp_path), vacuum_retain_hours=retain_hours)
        return SnapshotTable(spark, cfg, ("finance", "t"), SCHEMA, key="k", partition_by="d")

    table_with(168).write_full(_frame(spark, D1, [("a", 1, "1.00")]), D1, SETTINGS)
    # offered while younger than the retention less a day: 48 h -> 24 h, 24 h -> none
    assert table_with(48).dates() == {D1}
    assert table_with(24).dates() == set()
    assert table_with(24).read(D1) is None
    assert table_with(24).base_before(D2, SETTINGS) is None


def _changed(table, day, since) -> set[str] | None:
    keys = table.changed_keys(day, since)
    return None if keys is None else {r["k"] for r in keys.collect()}


def test_the_keys_a_day_changed_come_from_its_merge(spark, table):
    table.write_full(_frame(spark, D1, [("a", 1, "1.00"), ("b", 1, "2.00"), ("c", 2, "3.00")]), D1, SETTINGS)
    v1 = table.snapshots()[D1].version
    assert table.changed_keys(D1, v1) is None  # written whole: no changes to read
    upserts = _frame(spark, D2, [("b", 1, "2.50"), ("e", 3, "5.00")])
    table.write_changes(D1, D2, upserts, _keys(spark, ["a"]), SETTINGS, inputs={"x/y": 4})
    assert table.snapshots()[D2].inputs == {"x/y": 4}
    assert _changed(table, D2, v1) == {"a", "b", "e"}  # updated, new, removed
    # the rows themselves: each changed key's row before (updated, removed) and after (updated, new)
    changes = {(r["k"], r["d"].day, str(r["v"]), r["_change_type"]) for r in table.changes(D2, v1).collect()}
    assert changes == {
        ("a", 1, "1.00", "delete"),
        ("b", 1, "2.00", "update_preimage"),
        ("b", 1, "2.50", "update_postimage"),
        ("e", 3, "5.00", "insert"),
    }
    assert table.changed_keys(D2, v1 + 1) is None  # not changes from that version
    # the scope drop is not among the changed keys; a day with nothing merged changed none
    table.write_changes(D2, D3, upserts.limit(0), _keys(spark, []), SETTINGS, drop_below=dt.date(2026, 11, 2))
    assert _changed(table, D3, table.snapshots()[D2].version) == set()
    # the same columns as a feed read (none of them the reader's as_of)
    assert table.changes(D3, table.snapshots()[D2].version).columns == table.changes(D2, v1).columns
    # a rerun of D2 from D1 with other changes: its keys, not the first run's
    table.write_changes(D1, D2, _frame(spark, D2, [("c", 2, "3.50")]), _keys(spark, []), SETTINGS)
    assert _changed(table, D2, v1) == {"c"}
    # D3 was committed on the first run of D2, which is no longer the mapped one
    assert table.changed_keys(D3, table.snapshots()[D2].version) is None


def test_a_version_map_written_before_the_change_columns_gains_them(spark, table):
    """An older warehouse's audit/snapshot_versions (no table_id, base_version, merge_version,
    inputs): its versions are not offered (they cannot be told from a re-created table's), the
    day is computed whole, and the map gains the columns."""
    table.write_full(_frame(spark, D1, [("a", 1, "9.99")]), D1, SETTINGS)
    old = spark.createDataFrame(
        [(table.label, D1, 0, None, dt.datetime.now())],
        "table string, as_of date, version long, settings string, committed_at timestamp",
    )
    versions = table.cfg.table_path("audit", "snapshot_versions")
    old.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy("table").save(
        versions
    )
    assert table.dates() == set()
    table.write_full(_frame(spark, D1, [("a", 1, "1.00")]), D1, SETTINGS)
    assert table.dates() == {D1}
    table.write_changes(D1, D2, _frame(spark, D2, [("b", 1, "2.00")]), _keys(spark, []), SETTINGS)
    assert _changed(table, D2, table.snapshots()[D1].version) == {"b"}
    assert _rows(table.read(D2)) == {"a": (D2, 1, "1.00"), "b": (D2, 1, "2.00")}


def test_checks_validate_the_written_rows_only_on_a_base_that_passed_at_its_version(spark, table, tmp_path):
    from assets.snapshots import check_frame
    from quality.checks import check_results
    from quality.suites import Suite, between, unique_key

    suites = [
        Suite(
            name="t_rules",
            description="one row per k, v not negative",
            expectations=lambda: [*unique_key(["k"]), *between("v", 0)],
        )
    ]
    root, names = str(tmp_path / "validations"), ["t_rules"]

    def check(day, written):
        frame, record = check_frame(table, day, written, names, root)
        [result] = check_results(
            "finance/t", frame, suites, validations_root=root, partition=day.isoformat(), record=record
        )
        return sorted(_rows(frame)), result.passed

    def changes(base, day, rows):
        written = table.write_changes(base, day, _frame(spark, day, rows), _keys(spark, []), SETTINGS)
        return {"base": base, **written}

    # D1 from scratch: the whole snapshot; b is negative.
    table.write_full(_frame(spark, D1, [("a", 1, "1.00"), ("b", 1, "-2.00"), ("c", 2, "3.00")]), D1, SETTINGS)
    assert check(D1, {"base": None}) == (["a", "b", "c"], False)
    # D2 writes only c, but its base failed: the whole snapshot again, and b still fails it.
    assert check(D2, changes(D1, D2, [("c", 2, "4.00")])) == (["a", "b", "c"], False)
    # D3 mends b: the whole snapshot (its base failed), which now passes.
    assert check(D3, changes(D2, D3, [("b", 1, "2.00")])) == (["a", "b", "c"], True)
    # D4 on a base that passed: only the rows it wrote, and a bad one among them fails the check.
    assert check(D4, changes(D3, D4, [("c", 2, "-1.00")])) == (["c"], False)
    # D4 again, on the same base, a key written twice: caught among the written rows.
    assert check(D4, changes(D3, D4, [("e", 3, "1.00"), ("e", 3, "2.00")])) == (["e"], False)
    assert check(D4, changes(D3, D4, [("e", 3, "1.00")])) == (["e"], True)
    # D3 committed again (another version than the one that passed): D4 validates everything.
    table.write_changes(D2, D3, _frame(spark, D3, [("b", 1, "2.00")]), _keys(spark, []), SETTINGS)
    assert check(D4, changes(D3, D4, [("e", 3, "1.00")])) == (["a", "b", "c", "e"], True)
