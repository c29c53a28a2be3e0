"""Bronze readers: every record keeps its position in its landing file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import functions as F

from assets.ingest.bronze import read_landing_partition
from assets.ingest.contracts import ORDERS, TRAFFIC

DAY = dt.date(2026, 11, 5)


def _traffic_table(n: int) -> pa.Table:
    return pa.table(
        {
            "event_id": [f"e{i:05d}" for i in range(n)],
            "event_time": pa.array([dt.datetime(2026, 11, 4, 17, 0)] * n, pa.timestamp("us", tz="UTC")),
            "user_id": ["u1"] * n, "product_id": ["p1"] * n, "spu_id": ["s1"] * n, "merchant_id": ["m1"] * n,
            "pool": ["organic"] * n, "event_type": ["impression"] * n,
            "campaign_id": pa.array([None] * n, pa.string()), "placement": ["feed"] * n,
            "shown_price": pa.array([Decimal("1.00")] * n, pa.decimal128(18, 2)),
        }
    )


def test_parquet_rows_numbered_in_file_order_across_row_groups(spark, tmp_path):
    folder = tmp_path / "traffic" / f"dt={DAY}"
    folder.mkdir(parents=True)
    # Small row groups and a tiny split size: the file is read by several tasks, and numbering
    # must still follow the file's own row order.
    pq.write_table(_traffic_table(2500), folder / "a.parquet", row_group_size=300)
    pq.write_table(_traffic_table(7), folder / "b.parquet")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "4096")
    try:
        records, files = read_landing_partition(spark, str(tmp_path), TRAFFIC, DAY)
        rows = records.select(
            "source_file", "line_number", F.col("fields")["event_id"].alias("event_id")
        ).collect()
        assert spark.read.parquet(str(folder / "a.parquet")).rdd.getNumPartitions() > 1
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert [f["records"] for f in files] == [2500, 7]
    by_file = {}
    for r in rows:
        by_file.setdefault(r.source_file, []).append((r.line_number, r.event_id))
    for name, n in (("a.parquet", 2500), ("b.parquet", 7)):
        numbered = sorted(by_file[f"traffic/dt={DAY}/{name}"])
        assert numbered == [(i + 1, f"e{i:05d}") for i in range(n)]


def test_jsonl_lines_numbered_in_file_order(spark, tmp_path):
    folder = tmp_path / "orders" / f"dt={DAY}"
    folder.mkdir(parents=True)
    lines = [f'{{"order_id": "o{i:05d}"}}' for i in range(3000)]
    lines[10] = ""  # a blank line keeps its number but is no record
    (folder / "part-1.jsonl").write_text("\n".join(lines) + "\n")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "8192")
    try:
        records, files = read_landing_partition(spark, str(tmp_path), ORDERS, DAY)
        rows = records.select("line_number", F.col("fields")["order_id"].alias("order_id")).collect()
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert files[0]["records"] == 2999
    expected = [(i + 1, f"o{i:05d}") for i in range(3000) if i != 10]
    assert sorted((r.line_number, r.order_id) for r in rows) == expected


def test_an_unreadable_file_is_recorded_with_the_same_error_in_every_process(spark, tmp_path):
    folder = tmp_path / "traffic" / f"dt={DAY}"
    folder.mkdir(parents=True)
    pq.write_table(_traffic_table(50), folder / "a.parquet")
    good = (folder / "a.parquet").read_bytes()
    (folder / "b.parquet").write_bytes(good[: len(good) // 2])  # truncated
    errors = []
    for _ in range(2):  # each read is a new py4j call, with a new object id
        _, files = read_landing_partition(spark, str(tmp_path), TRAFFIC, DAY)
        [bad] = [f for f in files if f["status"] == "quarantined"]
        errors.append(bad["error"])
    assert errors[0] == errors[1]
    assert errors[0].startswith("file:unreadable: ")
    assert "An error occurred while calling" not in errors[0]
    assert "b.parquet" in errors[0]


def test_read_error_message_skips_the_py4j_call_line():
    from assets.ingest.bronze import read_error_message

    java = Exception(
        "An error occurred while calling o44600.parquet.\n"
        ": org.apache.spark.SparkException: [FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] footer\n"
        "\tat org.apache.spark..."
    )
    assert read_error_message(java) == (
        "org.apache.spark.SparkException: [FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] footer"
    )
    assert read_error_message(ValueError("")) == "ValueError"
