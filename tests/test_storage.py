"""assets.storage: settings recorded with a snapshot decide whether a later one may build on it."""

from __future__ import annotations

import datetime as dt

from assets.storage import incremental_base, partition_settings, replace_partition

D1, D2, D3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def _snapshot(spark, day):
    return spark.createDataFrame([(day, "o1")], "as_of date, order_id string")


def test_a_snapshot_is_built_on_only_if_written_with_the_same_settings(spark, tmp_path):
    path = str(tmp_path / "snapshots")
    seven, three = {"window_days": 7}, {"window_days": 3}
    replace_partition(_snapshot(spark, D1), path, {"as_of": D1}, settings=seven)
    replace_partition(_snapshot(spark, D2), path, {"as_of": D2}, settings=seven)

    assert partition_settings(spark, path, {"as_of": D1}) == seven
    assert incremental_base(spark, path, D3, seven) == D2  # the latest earlier snapshot
    assert incremental_base(spark, path, D2, seven) == D1  # never the day itself
    assert incremental_base(spark, path, D1, seven) is None  # nothing earlier
    assert incremental_base(spark, path, D3, three) is None  # the window changed: from scratch

    # D2 rewritten under the new window: the latest write of the partition is what counts.
    replace_partition(_snapshot(spark, D2), path, {"as_of": D2}, settings=three)
    assert partition_settings(spark, path, {"as_of": D2}) == three
    assert incremental_base(spark, path, D3, three) == D2
    assert incremental_base(spark, path, D3, seven) is None

    # A snapshot written without settings (an older warehouse) is never built on.
    replace_partition(_snapshot(spark, D2), path, {"as_of": D2})
    assert partition_settings(spark, path, {"as_of": D2}) is None
    assert incremental_base(spark, path, D3, three) is None


def test_latest_partition_before_comes_from_the_current_files_of_the_log(spark, tmp_path):
    """The latest snapshot before D is read from the table's file list (not by scanning every
    snapshot), and reflects the table as it is now: a partition deleted since does not count."""
    from delta.tables import DeltaTable

    from assets.storage import latest_partition_before, partition_values

    path = str(tmp_path / "listed")
    assert latest_partition_before(spark, path, "as_of", D3) is None  # no table yet
    for day in (D1, D2, D3):
        replace_partition(_snapshot(spark, day), path, {"as_of": day})
    assert partition_values(spark, path, "as_of") == {D1.isoformat(), D2.isoformat(), D3.isoformat()}
    assert latest_partition_before(spark, path, "as_of", D3) == D2
    assert latest_partition_before(spark, path, "as_of", dt.date(2026, 12, 1)) == D3
    assert latest_partition_before(spark, path, "as_of", D1) is None

    DeltaTable.forPath(spark, path).delete(f"as_of = DATE'{D2.isoformat()}'")
    assert partition_values(spark, path, "as_of") == {D1.isoformat(), D3.isoformat()}
    assert latest_partition_before(spark, path, "as_of", D3) == D1
