"""SPEC §8 snapshots and §10 serving: gold keeps every as_of, kpi.duckdb shows the latest per key.

Gold tables are written with assets.storage.replace_partition, the way the assets write them:
kpi_daily gets snapshot 2026-12-09 (days 11-10, 12-09) and then 2026-12-10 (days 12-09, 12-10).
Serving must show 11-10 from the 12-09 snapshot (no later row for it) and 12-09, 12-10 from 12-10.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal

import duckdb
import pytest

from assets.kpi.metrics import KPI_TABLE_COLUMNS
from assets.serving.live import connect_live, discover_tables, live_sql
from assets.serving.publish import (
    SERVING_TABLES,
    publish_kpi_duckdb,
    serving_file_path,
    spark_arrow_sources,
)
from assets.storage import read_table, replace_partition
from pipelines.config import REPO_ROOT
from tests.kpi import builders as b

D_PREV = b.day("2026-12-09")
D = b.day("2026-12-10")


def write_gold(spark, warehouse: str, table: str, as_of: dt.date, rows: list[dict]) -> int:
    frame = b.gold_rows(spark, table, [dict(row, as_of=as_of) for row in rows])
    return replace_partition(frame, f"{warehouse}/gold/{table}", {"as_of": as_of})


@pytest.fixture(scope="module")
def warehouse(spark, tmp_path_factory):
    # Tiny tables: don't spread the Delta log replay over the default 50 tasks.
    previous = spark.conf.get("spark.databricks.delta.snapshotPartitions", None)
    spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    root = str(tmp_path_factory.mktemp("warehouse"))
    write_gold(
        spark,
        root,
        "kpi_daily",
        D_PREV,
        [
            dict(dt=b.day("2026-11-10"), orders=1, payment_gmv=Decimal("10.00")),
            dict(dt=b.day("2026-12-09"), orders=2, payment_gmv=Decimal("20.00")),
        ],
    )
    # a first run for D, then its rerun with later data: the rerun replaces only as_of = D
    write_gold(spark, root, "kpi_daily", D, [dict(dt=b.day("2026-12-09"), orders=99)])
    write_gold(
        spark,
        root,
        "kpi_daily",
        D,
        [
            dict(
                dt=b.day("2026-12-09"),
                orders=3,
                payment_gmv=Decimal("30.00"),
                roi=Decimal("1.234567"),
                settlement_final=False,
            ),
            dict(dt=b.day("2026-12-10"), orders=4, payment_gmv=Decimal("40.00")),
        ],
    )
    write_gold(
        spark,
        root,
        "kpi_merchant_daily",
        D,
        [
            dict(dt=b.day("2026-12-10"), merchant_id="m1", orders=4, payment_gmv=Decimal("40.00")),
        ],
    )
    write_gold(
        spark,
        root,
        "kpi_campaign_daily",
        D,
        [
            dict(
                dt=b.day("2026-12-10"),
                campaign_id="c1",
                merchant_id="m1",
                impressions=10,
                clicks=2,
                ad_spend=Decimal("5.00"),
            ),
        ],
    )
    write_gold(
        spark,
        root,
        "return_attribution_daily",
        D,
        [
            dict(
                dt=b.day("2026-12-10"),
                attributed_pool="ad",
                reexposure="both",
                orders=2,
                returned_orders=1,
                return_rate=Decimal("0.500000"),
                refund_amount=Decimal("3.10"),
                found_cheaper_returns=1,
            ),
        ],
    )
    ledger = b.ledger(
        spark,
        [
            dict(
                settlement_date="2026-12-10",
                order_id="o1",
                return_id="r1",
                paid_at="2026-12-01 10:00",
                refunded_at="2026-12-05 09:00",
                merchant="m1",
                campaign="c1",
                ad_fee_refund="33.33",
            ),
            dict(
                settlement_date="2026-12-10",
                entry_type="reversal",
                order_id="o2",
                return_id="r2",
                paid_at="2026-12-01 10:00",
                merchant="m1",
                campaign="c1",
                ad_fee_refund="-1.05",
            ),
        ],
    )
    replace_partition(ledger, f"{root}/finance/ad_fee_refund_ledger", {"settlement_date": D})
    yield root
    if previous is None:
        spark.conf.unset("spark.databricks.delta.snapshotPartitions")
    else:
        spark.conf.set("spark.databricks.delta.snapshotPartitions", previous)


@pytest.fixture(scope="module")
def published(warehouse):
    return publish_kpi_duckdb(warehouse)


def bare_connection(path: str) -> duckdb.DuckDBPyConnection:
    """What an executive's client does: no extension, no onetrack code, read-only."""
    return duckdb.connect(
        path,
        read_only=True,
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )


def test_older_snapshots_are_kept_and_reruns_replace_only_their_own(spark, warehouse):
    rows = read_table(spark, f"{warehouse}/gold/kpi_daily").select("as_of", "dt", "orders").collect()
    assert sorted((r["as_of"], r["dt"], r["orders"]) for r in rows) == [
        (D_PREV, b.day("2026-11-10"), 1),
        (D_PREV, b.day("2026-12-09"), 2),
        (D, b.day("2026-12-09"), 3),  # the first run's 99 was replaced by the rerun
        (D, b.day("2026-12-10"), 4),
    ]


def test_publish_reports_row_counts(published, warehouse):
    assert published.path == serving_file_path(warehouse)
    assert published.row_counts == {
        "kpi_daily": 3,
        "kpi_merchant_daily": 1,
        "kpi_campaign_daily": 1,
        "return_attribution_daily": 1,
        "ad_fee_refund_ledger": 2,
    }
    assert set(published.source_reader.values()) == {"delta_scan"}
    # nothing but the published file is left in the serving directory
    assert os.listdir(os.path.dirname(published.path)) == ["kpi.duckdb"]


def test_the_checks_expected_counts_are_the_same_from_duckdb_and_spark(spark, warehouse):
    from assets.serving.checks import expected_row_counts

    # by hand from the fixture: kpi_daily has 4 rows over 2 snapshots, 3 distinct dt; the ledger 2 rows
    expected = {
        "kpi_daily": 3,
        "kpi_merchant_daily": 1,
        "kpi_campaign_daily": 1,
        "return_attribution_daily": 1,
        "ad_fee_refund_ledger": 2,
    }
    assert expected_row_counts(warehouse) == expected
    assert expected_row_counts(warehouse, spark) == expected


def test_serving_shows_latest_snapshot_per_key(published):
    with bare_connection(published.path) as con:
        rows = con.execute("SELECT dt, as_of, orders, payment_gmv, roi FROM kpi_daily ORDER BY dt").fetchall()
    assert rows == [
        (b.day("2026-11-10"), D_PREV, 1, Decimal("10.00"), None),  # only in the older snapshot
        (b.day("2026-12-09"), D, 3, Decimal("30.00"), Decimal("1.234567")),  # latest as_of wins
        (b.day("2026-12-10"), D, 4, Decimal("40.00"), None),
    ]


def test_bare_client_reads_every_table_with_its_types(published):
    with bare_connection(published.path) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert tables == set(SERVING_TABLES)
        assert con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone()[0] == 0
        types = {
            (table, column): data_type
            for table, column, data_type in con.execute(
                "SELECT table_name, column_name, data_type FROM duckdb_columns()"
            ).fetchall()
        }
        for table in SERVING_TABLES[:4]:
            columns = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
                    [table],
                ).fetchall()
            ]
            assert tuple(columns) == KPI_TABLE_COLUMNS[table]
        assert types[("kpi_daily", "dt")] == "DATE"
        assert types[("kpi_daily", "payment_gmv")] == "DECIMAL(18,2)"
        assert types[("kpi_daily", "roi")] == "DECIMAL(18,6)"
        assert types[("kpi_daily", "orders")] == "BIGINT"
        assert types[("kpi_daily", "settlement_final")] == "BOOLEAN"
        assert types[("kpi_merchant_daily", "net_roi")] == "DECIMAL(18,6)"
        assert types[("kpi_campaign_daily", "allocated_ad_fee")] == "DECIMAL(18,2)"
        assert types[("return_attribution_daily", "reexposure")] == "VARCHAR"
        assert types[("ad_fee_refund_ledger", "ad_fee_refund")] == "DECIMAL(18,2)"
        assert types[("ad_fee_refund_ledger", "settlement_date")] == "DATE"
        assert types[("ad_fee_refund_ledger", "paid_at")] == "TIMESTAMP WITH TIME ZONE"

        ledger = con.execute(
            "SELECT entry_type, order_id, ad_fee_refund, "
            "strftime(timezone('Asia/Shanghai', refunded_at), '%Y-%m-%d %H:%M') "
            "FROM ad_fee_refund_ledger ORDER BY order_id"
        ).fetchall()
        assert ledger == [
            ("refund", "o1", Decimal("33.33"), "2026-12-05 09:00"),
            ("reversal", "o2", Decimal("-1.05"), "2026-12-01 10:00"),
        ]
        campaign = con.execute(
            "SELECT merchant_id, impressions, clicks, ad_spend FROM kpi_campaign_daily"
        ).fetchall()
        assert campaign == [("m1", 10, 2, Decimal("5.00"))]
        attribution = con.execute(
            "SELECT attributed_pool, reexposure, orders, return_rate, refund_amount "
            "FROM return_attribution_daily"
        ).fetchall()
        assert attribution == [("ad", "both", 2, Decimal("0.500000"), Decimal("3.10"))]


def test_documented_queries_run_on_a_bare_client(published):
    """Every SQL block of docs/executives.md runs on the published file, read-only, no extension."""
    queries = re.findall(r"```sql\n(.*?)```", (REPO_ROOT / "docs" / "executives.md").read_text(), re.S)
    assert len(queries) >= 7
    with bare_connection(published.path) as con:
        for query in queries:
            con.execute(query).fetchall()


def test_the_duckdb_cli_answers_the_documented_queries_read_only(published):
    """The plain ``duckdb`` command-line client (the ``duckdb-cli`` package, no Python, no
    extension) opens the file with ``-readonly`` and answers the README's and the guide's queries."""
    import subprocess
    import sys
    from pathlib import Path

    cli = Path(sys.executable).parent / "duckdb"
    assert cli.exists(), "duckdb-cli is a pinned dependency: run .ci/setup.sh"
    readme = (REPO_ROOT / "README.md").read_text()
    readme_query = re.search(r'duckdb -readonly \S+ \\\n\s+"(SELECT[^"]+)"', readme).group(1)
    guide = re.findall(r"```sql\n(.*?)```", (REPO_ROOT / "docs" / "executives.md").read_text(), re.S)
    for query in [readme_query, *guide]:
        done = subprocess.run(
            [str(cli), "-readonly", "-csv", published.path, "-c", query.strip()],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "Error" not in done.stderr, (query, done.stderr)
    kpi = subprocess.run(
        [str(cli), "-readonly", "-csv", published.path, "-c", "SELECT dt, orders FROM kpi_daily ORDER BY dt"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.splitlines()
    assert kpi == ["dt,orders", "2026-11-10,1", "2026-12-09,3", "2026-12-10,4"]
    write = subprocess.run(
        [str(cli), "-readonly", published.path, "-c", "DELETE FROM kpi_daily"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert write.returncode != 0 and "read-only" in (write.stderr + write.stdout).lower()


def test_republish_swaps_the_file_under_an_open_reader(spark, warehouse, published):
    reader = bare_connection(published.path)
    try:
        before = reader.execute("SELECT count(*) FROM kpi_merchant_daily").fetchone()[0]
        write_gold(
            spark,
            warehouse,
            "kpi_merchant_daily",
            D,
            [
                dict(dt=b.day("2026-12-10"), merchant_id="m1", orders=4),
                dict(dt=b.day("2026-12-10"), merchant_id="m2", orders=1),
            ],
        )
        again = publish_kpi_duckdb(warehouse)
        # the open reader still sees a whole file (the previous one)
        assert reader.execute("SELECT count(*) FROM kpi_merchant_daily").fetchone()[0] == before == 1
    finally:
        reader.close()
    assert again.row_counts["kpi_merchant_daily"] == 2
    with bare_connection(again.path) as con:
        assert con.execute("SELECT count(*) FROM kpi_merchant_daily").fetchone()[0] == 2
    assert os.listdir(os.path.dirname(again.path)) == ["kpi.duckdb"]


def test_failed_publish_leaves_the_published_file_alone(warehouse, published, tmp_path):
    bad_sql = tmp_path / "sql"
    (bad_sql / "serving").mkdir(parents=True)
    for table in SERVING_TABLES:
        (bad_sql / "serving" / f"{table}.sql").write_text("SELECT * FROM no_such_relation;")
    before = os.stat(published.path).st_mtime_ns
    with pytest.raises(duckdb.Error):
        publish_kpi_duckdb(warehouse, sql_dir=bad_sql)
    assert os.stat(published.path).st_mtime_ns == before
    assert os.listdir(os.path.dirname(published.path)) == ["kpi.duckdb"]


def test_spark_fallback_gives_the_same_tables(spark, warehouse, published, tmp_path):
    target = str(tmp_path / "kpi.duckdb")
    fallback = publish_kpi_duckdb(
        warehouse, target=target, arrow_sources=spark_arrow_sources(spark, warehouse)
    )
    assert set(fallback.source_reader.values()) == {"arrow"}
    with bare_connection(target) as new, bare_connection(published.path) as reference:
        for table in SERVING_TABLES:
            query = f"SELECT * FROM {table} ORDER BY ALL"
            assert new.execute(query).fetchall() == reference.execute(query).fetchall(), table
            assert (
                new.execute(f"DESCRIBE {table}").fetchall()
                == reference.execute(f"DESCRIBE {table}").fetchall()
            )


def test_live_views(warehouse, published):
    assert ("gold", "kpi_daily") in {(layer, table) for layer, table, _ in discover_tables(warehouse)}
    assert "delta_scan" in live_sql(warehouse)
    con = connect_live(warehouse)
    try:
        assert con.execute("SELECT count(*) FROM gold.kpi_daily").fetchone()[0] == 4  # every snapshot
        live = con.execute("SELECT dt, as_of, orders FROM kpi_daily ORDER BY dt").fetchall()
        ledger = con.execute("SELECT count(*) FROM finance.ad_fee_refund_ledger").fetchone()[0]
    finally:
        con.close()
    with bare_connection(published.path) as served:
        assert live == served.execute("SELECT dt, as_of, orders FROM kpi_daily ORDER BY dt").fetchall()
    assert ledger == 2
