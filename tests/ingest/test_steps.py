"""Bronze and silver steps on a small hand-made landing zone with every kind of fault."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from assets.ingest.contracts import AD_SPEND, ORDERS, TRAFFIC
from assets.ingest.steps import ingest_bronze, ingest_silver
from assets.storage import read_table
from pipelines.config import OnetrackConfig
from tests.ingest.helpers import order

D1, D2 = dt.date(2026, 11, 3), dt.date(2026, 11, 4)


def write_lines(path, lines, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("onetrack")
    landing = root / "landing"
    o = lambda **kw: json.dumps(order(**kw))  # noqa: E731
    write_lines(
        landing / "orders/dt=2026-11-03/part-1.jsonl",
        [
            o(order_id="o1"),
            o(order_id="o1"),  # exact duplicate
            "{broken",  # malformed
            "",  # blank line: not a record
            o(order_id="o2", quantity=0),  # quarantined
            o(order_id="o3", note="extra"),  # extra field: accepted, reported
        ],
    )
    write_lines(landing / "orders/dt=2026-11-03/part-2.jsonl.gz", [o(order_id="o4")], gz=True)
    (landing / "orders/dt=2026-11-03/part-3.jsonl.gz").write_bytes(b"\x1f\x8b\x08 not really gzip")
    write_lines(
        landing / "orders/dt=2026-11-04/part-1.jsonl",
        [o(order_id="o1"), o(order_id="o1", status="shipped", updated_at="2026-11-04T09:00:00+08:00")],
    )
    header = "stat_date,stat_hour,advertiser_id,campaign_id,product_id,impressions,clicks,spend"
    write_lines(
        landing / "ad_spend/dt=2026-11-03/a.csv",
        [header, "2026-11-03,1,m1,c1,p1,100,10,12.50", "2026-11-03,2,m1,c1,p1,5,9,1.00"],
    )
    write_lines(
        landing / "ad_spend/dt=2026-11-03/b.csv",
        ["stat_date,stat_hour,advertiser_id,campaign_id,product_id,impressions,clicks",
         "2026-11-03,3,m1,c1,p1,100,10", "2026-11-03,4,m1,c1,p1,100,10"],
    )
    tdir = landing / "traffic/dt=2026-11-03"
    tdir.mkdir(parents=True)
    table = pa.table(
        {
            "event_id": ["e1", "e2", "e1"],
            "event_time": pa.array(
                [dt.datetime(2026, 11, 2, 17, 0), dt.datetime(2026, 11, 2, 18, 0), dt.datetime(2026, 11, 2, 17, 0)],
                pa.timestamp("us", tz="UTC"),
            ),
            "user_id": ["u1"] * 3, "product_id": ["p1"] * 3, "spu_id": ["s1"] * 3, "merchant_id": ["m1"] * 3,
            "pool": ["ad", "organic", "ad"], "event_type": ["click"] * 3,
            "campaign_id": ["c1", None, "c1"], "placement": ["feed"] * 3,
            "shown_price": pa.array([Decimal("59.90")] * 3, pa.decimal128(18, 2)),
        }
    )
    pq.write_table(table, tdir / "a.parquet")
    good = (tdir / "a.parquet").read_bytes()
    (tdir / "b.parquet").write_bytes(good[: len(good) // 2])  # truncated
    return OnetrackConfig(
        landing_dir=str(landing), warehouse_dir=str(root / "warehouse"), settlement_dir=str(root / "settlements")
    )


def run_source(spark, cfg, contract, day):
    bronze = ingest_bronze(spark, cfg, contract, day)
    silver = ingest_silver(spark, cfg, contract, day)
    return bronze, silver


def test_orders_conservation_and_quarantine(spark, zone):
    bronze, silver = run_source(spark, zone, ORDERS, D1)
    assert bronze["files_read"] == 3 and bronze["files_quarantined"] == 1  # the fake .gz
    assert silver["records_read"] == 6  # 5 non-blank lines of part-1 + 1 of part-2
    assert silver["records_accepted"] == 3  # o1, o3, o4
    assert silver["records_duplicate"] == 1
    assert silver["records_quarantined"] == 2
    assert silver["quarantine_by_rule"] == {"json:malformed": 1, "quantity:range": 1}
    assert silver["extra_fields"] == {"note": 1}
    q = read_table(spark, zone.table_path("quarantine", "orders")).orderBy("line_number").collect()
    assert [(r.source_file, r.line_number, r.rule) for r in q] == [
        ("orders/dt=2026-11-03/part-1.jsonl", 3, "json:malformed"),
        ("orders/dt=2026-11-03/part-1.jsonl", 5, "quantity:range"),
    ]
    assert q[0].raw == "{broken"
    files = read_table(spark, zone.table_path("bronze", "landing_files")).filter("source = 'orders'").collect()
    bad = [f for f in files if f.status == "quarantined"]
    assert [f.source_file for f in bad] == ["orders/dt=2026-11-03/part-3.jsonl.gz"]
    assert bad[0].error.startswith("file:unreadable")


def test_later_partition_dedups_against_history_and_keeps_versions(spark, zone):
    run_source(spark, zone, ORDERS, D1)
    _, silver = run_source(spark, zone, ORDERS, D2)
    assert (silver["records_read"], silver["records_accepted"], silver["records_duplicate"]) == (2, 1, 1)
    versions = read_table(spark, zone.table_path("silver", "orders")).filter("order_id = 'o1'")
    assert sorted(r.status for r in versions.collect()) == ["paid", "shipped"]


def test_rerun_changes_no_row(spark, zone):
    run_source(spark, zone, ORDERS, D1)
    tables = [("bronze", "orders"), ("silver", "orders"), ("quarantine", "orders"), ("audit", "ingest_audit")]

    def snapshot():
        return {
            t: sorted(map(str, read_table(spark, zone.table_path(*t)).drop("fields").collect())) for t in tables
        }

    before = snapshot()
    run_source(spark, zone, ORDERS, D1)
    assert snapshot() == before


def test_csv_missing_column_quarantines_every_row(spark, zone):
    bronze, silver = run_source(spark, zone, AD_SPEND, D1)
    assert bronze["files_quarantined"] == 1
    assert silver["records_read"] == 4
    assert silver["quarantine_by_rule"] == {"file:missing_column:spend": 2, "clicks:range": 1}
    row = read_table(spark, zone.table_path("silver", "ad_spend")).first()
    assert (row.stat_hour, row.impressions, row.clicks, row.spend) == (1, 100, 10, Decimal("12.50"))


def test_parquet_truncated_file_and_duplicate_event(spark, zone):
    bronze, silver = run_source(spark, zone, TRAFFIC, D1)
    assert (bronze["files_read"], bronze["files_quarantined"]) == (2, 1)
    assert (silver["records_read"], silver["records_accepted"], silver["records_duplicate"]) == (3, 2, 1)
    rows = (
        read_table(spark, zone.table_path("silver", "traffic"))
        .select("event_id", F.date_format("event_time", "yyyy-MM-dd HH:mm").alias("local"))
        .orderBy("event_id")
        .collect()
    )
    # 17:00 UTC on Nov 2 is 01:00 on Nov 3 in Asia/Shanghai.
    assert [(r.event_id, r.local) for r in rows] == [("e1", "2026-11-03 01:00"), ("e2", "2026-11-03 02:00")]
    # the table is created with statistics on the columns its readers filter on, and only those
    path = zone.table_path("silver", "traffic")
    properties = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["properties"]
    assert properties["delta.dataSkippingStatsColumns"] == "event_type,event_time"
    assert _stats_columns(spark, path) == {"event_type", "event_time"}


def test_duplicate_lookback_starts_a_day_before_the_earliest_valid_record(spark):
    from assets.ingest.steps import duplicate_lookback_start
    from assets.ingest.validate import validate_records
    from tests.ingest.helpers import bronze_frame

    records = [
        order(order_id="o1", updated_at="2026-11-02T23:30:00+08:00"),
        # 2026-11-01T17:00Z is 2026-11-02 01:00 in Asia/Shanghai: business day Nov 2, not Nov 1
        order(order_id="o2", updated_at="2026-11-01T17:00:00Z"),
        # broken (quantity 0): its timestamp must not widen the lookback
        order(order_id="o3", quantity=0, updated_at="2026-10-01T10:00:00+08:00"),
    ]
    validated = validate_records(bronze_frame(spark, records), ORDERS)
    assert duplicate_lookback_start(validated, ORDERS) == dt.date(2026, 11, 1)
    only_broken = validate_records(bronze_frame(spark, records[2:]), ORDERS)
    assert duplicate_lookback_start(only_broken, ORDERS) is None


def test_exact_repeat_found_however_late_it_lands(spark, zone):
    """An exact repeat landing weeks after its original is still a duplicate: the lookback follows
    the record's own time, not a fixed number of days."""
    run_source(spark, zone, ORDERS, D1)
    late_day = D1 + dt.timedelta(days=40)
    folder = f"{zone.landing_dir}/orders/dt={late_day.isoformat()}"
    import pathlib

    pathlib.Path(folder).mkdir(parents=True)
    first_line = (pathlib.Path(zone.landing_dir) / f"orders/dt={D1.isoformat()}/part-1.jsonl").read_text()
    pathlib.Path(folder, "late.jsonl").write_text(first_line.splitlines()[0] + "\n")
    _, silver = run_source(spark, zone, ORDERS, late_day)
    assert (silver["records_read"], silver["records_accepted"], silver["records_duplicate"]) == (1, 0, 1)


def test_duplicates_of_late_records_are_looked_up_in_older_partitions_only_for_them(spark, tmp_path):
    """Recent records meet the last two partitions; late ones also the older partitions, but only
    their own keys are read from there; the keys found are those of the whole-range lookup."""
    from assets.ingest.steps import duplicate_lookback_start, earlier_duplicate_keys
    from assets.ingest.validate import to_silver, validate_records
    from assets.storage import replace_partition
    from tests.ingest.helpers import bronze_frame

    late = order(order_id="late", updated_at="2026-11-01T10:00:00+08:00")
    other_old = order(order_id="other", updated_at="2026-11-01T11:00:00+08:00")
    recent = order(order_id="recent", updated_at="2026-11-09T10:00:00+08:00")
    new_late = order(order_id="new", updated_at="2026-11-02T10:00:00+08:00")
    cfg = OnetrackConfig(warehouse_dir=str(tmp_path / "warehouse"))
    path = cfg.table_path("silver", "orders")
    for landed, records in ((dt.date(2026, 11, 1), [late, other_old]), (dt.date(2026, 11, 9), [recent])):
        silver = to_silver(validate_records(bronze_frame(spark, records, day=landed), ORDERS), ORDERS)
        replace_partition(silver, path, {"dt": landed}, ["dt"])

    D = dt.date(2026, 11, 10)
    batch = validate_records(bronze_frame(spark, [late, recent, new_late], day=D), ORDERS).cache()
    since = duplicate_lookback_start(batch, ORDERS)
    assert since == dt.date(2026, 10, 31)
    hashes = {r.order_id: r.record_hash for r in batch.collect()}

    bounded = {r.record_hash for r in earlier_duplicate_keys(spark, cfg, ORDERS, D, since, batch).collect()}
    whole = {r.record_hash for r in earlier_duplicate_keys(spark, cfg, ORDERS, D, since).collect()}
    assert bounded == {hashes["late"], hashes["recent"]}  # not "other": no late record of the batch has it
    assert len(whole) == 3 and bounded & set(hashes.values()) == whole & set(hashes.values())


def _current_adds(spark, path):
    """The Delta log's ``add`` rows of the table's current data files."""
    current = {f.rsplit("/", 1)[-1] for f in read_table(spark, path).inputFiles()}
    log = spark.read.json(f"{path}/_delta_log/*.json").filter(F.col("add").isNotNull())
    return log.filter(F.element_at(F.split("add.path", "/"), -1).isin(*current))


def _stats_columns(spark, path) -> set[str]:
    """The columns the statistics of the table's current files name (min, max or null count)."""
    schema = "minValues map<string,string>, maxValues map<string,string>, nullCount map<string,bigint>"
    out = set()
    for r in _current_adds(spark, path).select(F.from_json("add.stats", schema).alias("s")).collect():
        for part in (r.s.minValues, r.s.maxValues, r.s.nullCount):
            out |= set(part or {})
    return out


def _file_ranges(spark, path, column, day):
    """(min, max) of ``column`` per data file of the ``dt = day`` partition, from the statistics
    in the Delta log of the table's current files: what Delta's data skipping decides by."""
    log = _current_adds(spark, path).filter(F.col("add.partitionValues.dt") == str(day))
    schema = "minValues map<string,string>, maxValues map<string,string>"
    stats = log.select(F.from_json("add.stats", schema).alias("s"))
    return sorted((r.s.minValues[column], r.s.maxValues[column]) for r in stats.collect())


def test_silver_traffic_split_by_event_type_lets_click_reads_skip_impression_files(spark, tmp_path):
    """Silver traffic files hold one event_type each: the files whose statistics admit a click
    are fewer than all (a click read skips the rest) and no row is lost. The maintenance compacts
    such a table value by value (one file per event_type and day here), rewrites a day written
    before the split the same way, keeps the rows, and has nothing left to do on a second run."""
    from assets.ingest.validate import silver_columns, to_silver
    from assets.maintenance import maintain_table, maintain_warehouse, partitions_to_resplit
    from assets.storage import replace_partition

    special = {
        "event_id": "format_string('e%03d', id)",
        "event_type": "CASE WHEN id % 4 = 0 THEN 'click' ELSE 'impression' END",
        "dt": "date'2026-11-03'",
        "line_number": "id",
    }
    exprs = [f"{special.get(c, 'cast(id as string)')} AS {c}" for c in silver_columns(TRAFFIC)]
    # 40 events, 10 clicks, spread over both input partitions, which have a known partitioning
    # (as after the ingestion's joins: the union of the split must not zip them back together)
    frame = spark.range(0, 40, 1, 2).selectExpr(*exprs).repartition(2, "event_id")
    path = str(tmp_path / "silver" / "traffic")
    replace_partition(to_silver(frame, TRAFFIC), path, {"dt": D1}, ["dt"])
    # the next day as written before the split: both files hold clicks and impressions
    replace_partition(frame.withColumn("dt", F.lit(D2)), path, {"dt": D2}, ["dt"])

    def ranges(day):
        return _file_ranges(spark, path, "event_type", day)

    assert ranges(D1) == [("click", "click")] * 2 + [("impression", "impression")] * 2
    assert ranges(D2) == [("click", "impression")] * 2
    table = read_table(spark, path)
    assert table.count() == 80
    assert table.filter(F.col("event_type") == "click").count() == 20
    rows_before = sorted(table.collect())
    # day 1: two small files per value; day 2: mixed files
    assert partitions_to_resplit(spark, path, "event_type") == [D1, D2]

    # written without the table properties of silver/traffic (as before they existed): every
    # column has statistics until the maintenance sets them; the files it rewrites follow them
    assert {"event_id", "user_id", "event_type"} <= _stats_columns(spark, path)
    [result] = maintain_warehouse(spark, str(tmp_path))
    assert result["rewritten_partitions"] == [str(D1), str(D2)]
    assert result["files_after"] == 4
    for day in (D1, D2):
        assert ranges(day) == [("click", "click"), ("impression", "impression")]
    assert _stats_columns(spark, path) == {"event_type", "event_time"}
    assert sorted(read_table(spark, path).collect()) == rows_before
    assert maintain_table(spark, path, split_by="event_type")["rewritten_partitions"] == []
