"""The Dagster wiring: re-exposure, the four KPI tables and the serving file materialize for one
partition on hand-written input Delta tables, and every check passes.

Scenario (D = 2026-11-20, a partition that exists whatever today's date):
  o1 u1 ad c1 60.00 paid 11-18 10:00, re-exposed cheaper in the organic pool on 11-19;
     r1 refunded 20.00 (found_cheaper) on 11-19, settled in the ledger on 11-19 (fee 10.00 x 20/60 = 3.33)
  o2 u2 organic 40.00 paid 11-19 09:00, no return
  c1 spend on 11-18: 10.00, all allocated to o1.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from pyspark.sql import SparkSession

from assets.finance.ledger import allocation_table, attribution_table
from assets.kpi.assets import KPI_ASSET_KEYS, KPI_ASSETS, ORDER_REEXPOSURE
from assets.serving.assets import KPI_DUCKDB, SERVING_ASSETS
from assets.serving.publish import NO_AUTOLOAD, serving_file_path
from assets.storage import read_table, replace_partition
from pipelines.config import OnetrackConfig
from pipelines.resources import OnetrackSettings, SparkResource
from tests.kpi import builders as b

pytestmark = pytest.mark.slow

D = "2026-11-20"


class SessionOfTheTests(SparkResource):
    """The session of the test run (never a second one)."""

    def get_session(self):
        return SparkSession.getActiveSession()


@pytest.fixture(scope="module")
def warehouse(spark, tmp_path_factory):
    previous = spark.conf.get("spark.databricks.delta.snapshotPartitions", None)
    spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    root = str(tmp_path_factory.mktemp("warehouse"))
    day = b.day(D)
    attribution = b.order_attribution(
        spark,
        [
            dict(as_of=D, order_id="o1", user="u1", amount="60.00", pool="ad", campaign="c1",
                 paid_at="2026-11-18 10:00"),
            dict(as_of=D, order_id="o2", user="u2", merchant="m2", amount="40.00", pool="organic",
                 paid_at="2026-11-19 09:00"),
        ],
    )  # fmt: skip
    attribution_table(spark, OnetrackConfig(warehouse_dir=root)).write_full(attribution, day, None)
    allocation = b.ad_fee_allocation(
        spark,
        [dict(as_of=D, stat_date="2026-11-18", campaign="c1", advertiser="m1", spend="10.00", order_id="o1",
              order_amount="60.00", fee="10.00")],
    )  # fmt: skip
    allocation_table(spark, OnetrackConfig(warehouse_dir=root)).write_full(allocation, day, None)
    ledger = b.ledger(
        spark,
        [dict(settlement_date="2026-11-19", order_id="o1", return_id="r1", paid_at="2026-11-18 10:00",
              merchant="m1", campaign="c1", ad_fee_refund="3.33")],
    )  # fmt: skip
    settled = b.day("2026-11-19")
    replace_partition(ledger, f"{root}/finance/ad_fee_refund_ledger", {"settlement_date": settled})
    silver = {
        "returns": b.returns(
            spark,
            [dict(return_id="r1", order_id="o1", status="refunded", reason="found_cheaper", refund="20.00",
                  requested_at="2026-11-19 12:00", refunded_at="2026-11-19 18:00", dt="2026-11-19")],
        ),
        "ad_spend": b.ad_spend(
            spark,
            [dict(stat_date="2026-11-18", hour=10, advertiser="m1", campaign="c1", spend="10.00",
                  impressions=100, clicks=5, dt="2026-11-18")],
        ),
        "traffic": b.traffic(
            spark,
            [dict(event_id="e1", user="u1", event_time="2026-11-19 08:00", pool="organic", price="55.00")],
        ),
    }  # fmt: skip
    for name, frame in silver.items():
        frame.write.format("delta").partitionBy("dt").save(f"{root}/silver/{name}")
    yield root
    if previous is None:
        spark.conf.unset("spark.databricks.delta.snapshotPartitions")
    else:
        spark.conf.set("spark.databricks.delta.snapshotPartitions", previous)


@pytest.fixture(scope="module")
def run(spark, warehouse):
    return dg.materialize(
        [*KPI_ASSETS, *SERVING_ASSETS],
        partition_key=D,
        resources={"spark": SessionOfTheTests(), "settings": OnetrackSettings(warehouse_dir=warehouse)},
        raise_on_error=True,
    )


def test_every_asset_materializes_and_every_check_passes(run):
    assert run.success
    materialized = {e.asset_key for e in run.get_asset_materialization_events()}
    assert materialized == {ORDER_REEXPOSURE, KPI_DUCKDB, *KPI_ASSET_KEYS.values()}
    evaluations = run.get_asset_check_evaluations()
    assert len(evaluations) == 14
    assert [e.check_name for e in evaluations if not e.passed] == []


def test_gold_snapshot_values(spark, warehouse, run):
    reexposure = read_table(spark, f"{warehouse}/gold/order_reexposure").collect()
    assert {r["order_id"]: r["reexposure"] for r in reexposure} == {"o1": "organic", "o2": "none"}
    daily = b.by_key(read_table(spark, f"{warehouse}/gold/kpi_daily").collect(), "dt")
    assert set(daily) == {b.day("2026-11-18"), b.day("2026-11-19")}
    d18 = daily[b.day("2026-11-18")]
    assert (d18["orders"], str(d18["payment_gmv"]), str(d18["ad_spend"])) == (1, "60.00", "10.00")
    assert str(d18["settled_gmv"]) == "40.00"  # 60 x (1 - 20/60)
    assert str(d18["net_roi"]) == "5.997001"  # 40.00 / (10.00 - 3.33) = 5.99700..


def test_kpi_chart_metadata(run):
    """The charts of assets/kpi/charts.py on the materializations (no cohort is paid on D itself)."""
    meta = {e.asset_key: e.materialization.metadata for e in run.get_asset_materialization_events()}
    daily = meta[KPI_ASSET_KEYS["kpi_daily"]]
    assert (daily["gmv_ad_of_D"].value, daily["gmv_ad_of_D_exact"].value) == (0.0, "0.00")
    assert "roi_of_D" not in daily  # no spend on D: no point rather than a fake 0
    chart = daily["chart_gmv_by_pool_roi"].value.splitlines()
    # full bar = 60.00 (11-18); 11-19: organic 40.00 -> 13.33 -> 13 characters; roi 60.00 / 10.00
    assert chart[4] == "| 2026-11-18 | 60.00 | 0.00 | 0.00 | `" + "█" * 20 + "` | 6.000000 | 5.997001 |"
    assert chart[5] == "| 2026-11-19 | 0.00 | 40.00 | 0.00 | `" + "▓" * 13 + "` | – | – |"
    returns = meta[KPI_ASSET_KEYS["return_attribution_daily"]]
    # o1 (re-exposed in the organic pool) returned; o2 (not re-exposed) not
    assert returns["return_rate_reexposed_window"].value == 1.0
    assert returns["return_rate_not_reexposed_window"].value == 0.0
    assert (returns["orders_reexposed_window"].value, returns["orders_not_reexposed_window"].value) == (1, 1)
    assert "chart_return_rate_reexposure" in returns and "chart_gmv_by_pool_roi" not in returns


def test_serving_file(warehouse, run):
    with duckdb.connect(serving_file_path(warehouse), read_only=True, config=NO_AUTOLOAD) as con:
        assert con.execute("SELECT count(*) FROM kpi_daily").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM ad_fee_refund_ledger").fetchone()[0] == 1
        assert con.execute(
            "SELECT reexposure, returned_orders FROM return_attribution_daily WHERE attributed_pool = 'ad'"
        ).fetchall() == [("organic", 1)]
