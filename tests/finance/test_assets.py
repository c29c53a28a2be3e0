"""The Dagster wiring of the finance path on the ledger scenario of ``test_ledger`` (silver in Delta):
every finance asset materializes for a partition, every check passes, the files are published;
running an older partition afterwards leaves the ledger as it was."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
from pyspark.sql import SparkSession

from assets.finance import settlement_files as sf
from assets.finance.assets import (
    AD_FEE_ALLOCATION,
    AD_FEE_REFUND_LEDGER,
    FINANCE_ASSETS,
    ORDER_ATTRIBUTION,
    SETTLEMENT_FILES,
)
from assets.finance.ledger import LandingNotIngestedError, run_ledger_through
from assets.storage import read_table
from pipelines.config import OnetrackConfig
from pipelines.resources import OnetrackSettings, SparkResource
from tests.finance.test_ledger import EXPECTED, ledger_rows, scenario

pytestmark = pytest.mark.slow


class SessionOfTheTests(SparkResource):
    """The session of the test run (never a second one)."""

    def get_session(self):
        return SparkSession.getActiveSession()


@pytest.fixture(scope="module")
def roots(spark, small_delta, tmp_path_factory):
    root = tmp_path_factory.mktemp("finance_assets")
    warehouse, settlements = str(root / "warehouse"), str(root / "settlements")
    for name, frame in scenario(spark).items():
        frame.write.format("delta").partitionBy("dt").save(f"{warehouse}/silver/{name}")
    # the ingestion's audit rows (only the columns the ledger reads): 11-01 .. 11-04 ingested
    audit = [
        (dt.date(2026, 11, d), s) for d in (1, 2, 3, 4) for s in ("orders", "returns", "ad_spend", "traffic")
    ]
    spark.createDataFrame(audit, "dt date, source string").write.format("delta").save(
        f"{warehouse}/audit/ingest_audit"
    )
    return warehouse, settlements


def _materialize(roots, day):
    warehouse, settlements = roots
    return dg.materialize(
        FINANCE_ASSETS,
        partition_key=day,
        resources={
            "spark": SessionOfTheTests(),
            "settings": OnetrackSettings(warehouse_dir=warehouse, settlement_dir=settlements),
        },
        raise_on_error=True,
    )


def test_finance_assets_materialize_and_checks_pass(spark, roots, monkeypatch):
    monkeypatch.setenv("ONETRACK_PARTITION_START", "2026-11-01")
    warehouse, settlements = roots
    run = _materialize(roots, "2026-11-04")
    assert run.success
    materialized = {e.asset_key for e in run.get_asset_materialization_events()}
    assert materialized == {ORDER_ATTRIBUTION, AD_FEE_ALLOCATION, AD_FEE_REFUND_LEDGER, SETTLEMENT_FILES}
    evaluations = run.get_asset_check_evaluations()
    assert len(evaluations) == 12
    assert [e.check_name for e in evaluations if not e.passed] == []

    ledger = read_table(spark, f"{warehouse}/finance/ad_fee_refund_ledger")
    assert ledger_rows(ledger) == EXPECTED  # 11-01 computed too (empty), then 11-02 .. 11-04
    assert sf.verify_day(settlements, dt.date(2026, 11, 4)) == []
    assert [d["date"] for d in sf.list_published(settlements)] == ["2026-11-04"]
    attribution = read_table(spark, f"{warehouse}/finance/order_attribution").collect()
    assert {r["order_id"]: r["attributed_pool"] for r in attribution} == {
        "A": "ad",
        "B": "ad",
        "C": "ad",
        "O": "organic",
    }
    # as of 11-04 the restated c1 spend (120.00) is split 60.00 / 60.00
    fees = read_table(spark, f"{warehouse}/finance/ad_fee_allocation").collect()
    assert {r["order_id"]: str(r["allocated_ad_fee"]) for r in fees} == {
        "A": "60.00",
        "B": "60.00",
        "C": "9.99",
    }

    # An older partition afterwards: the ledger stays as it was, its files are published.
    before = sorted(tuple(r) for r in ledger.collect())
    assert _materialize(roots, "2026-11-02").success
    after = sorted(tuple(r) for r in read_table(spark, f"{warehouse}/finance/ad_fee_refund_ledger").collect())
    assert after == before
    assert sf.verify_day(settlements, dt.date(2026, 11, 2)) == []
    assert sf.show_day(settlements, dt.date(2026, 11, 2))["ad_fee_refund"] == "65.00"  # 25 + 25 + 15

    # 11-05 has not been ingested: the ledger refuses to settle it (rows could never be corrected).
    cfg = OnetrackConfig(warehouse_dir=warehouse, settlement_dir=settlements, partition_start="2026-11-01")
    with pytest.raises(LandingNotIngestedError, match="2026-11-05"):
        run_ledger_through(spark, cfg, dt.date(2026, 11, 5))
