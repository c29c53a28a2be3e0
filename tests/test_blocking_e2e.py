"""A landing partition that breaks the contract beyond its threshold stops that day's run: the
critical check fails, the assets downstream of it are not materialized, no settlement files are
published for the day, and the bad records are all in quarantine (nothing is lost)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from assets.storage import read_table, table_exists
from pipelines.config import OnetrackConfig
from tests.conftest import onetrack_roots

pytestmark = pytest.mark.slow

DAY = dt.date(2026, 11, 1)
BAD_ROWS = 80  # > max(10 % of the day's ad-spend rows, the allowance of 25)


@pytest.fixture(scope="module")
def blocked_run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("blocked")
    with onetrack_roots(root):
        from pipelines.cli import run_days
        from pipelines.generate import generate_landing

        generate_landing(root / "landing", DAY, DAY, orders_per_day=60, seed=5, faults=False)
        folder = root / "landing" / "ad_spend" / f"dt={DAY}"
        header = "stat_date,stat_hour,advertiser_id,campaign_id,product_id,impressions,clicks,spend"
        bad = [f"{DAY},{h % 24},m_bad,c_bad{h},p_bad,10,1,-{h}.00" for h in range(1, BAD_ROWS + 1)]
        (folder / "zz-restated-by-a-broken-exporter.csv").write_text("\n".join([header, *bad]) + "\n")
        log: list[str] = []
        ok = run_days([DAY], log=log.append)
        yield {"ok": ok, "log": log, "cfg": OnetrackConfig.from_env(), "root": root}


def test_the_day_fails_on_its_critical_check(blocked_run):
    assert not blocked_run["ok"]
    text = "\n".join(blocked_run["log"])
    assert "FAILED critical check silver/ad_spend:ad_spend_quarantine_rate" in text


def test_nothing_downstream_is_written_and_no_files_are_published(spark, blocked_run):
    cfg = blocked_run["cfg"]
    for layer, table in (
        ("finance", "ad_fee_allocation"),
        ("finance", "ad_fee_refund_ledger"),
        ("gold", "kpi_daily"),
    ):
        assert not table_exists(spark, cfg.table_path(layer, table)), f"{layer}/{table} was written"
    assert not (Path(cfg.settlement_dir) / f"dt={DAY}").exists()
    assert not (Path(cfg.warehouse_dir) / "serving" / "kpi.duckdb").exists()
    # assets that do not depend on ad spend still ran
    assert table_exists(spark, cfg.table_path("finance", "order_attribution"))


def test_the_bad_rows_are_quarantined_with_their_rule(spark, blocked_run):
    cfg = blocked_run["cfg"]
    bad = read_table(spark, cfg.table_path("quarantine", "ad_spend")).filter(
        "source_file LIKE '%zz-restated-by-a-broken-exporter.csv'"
    )
    assert sorted((r.line_number, r.rule) for r in bad.collect()) == [
        (n, "spend:range") for n in range(1, BAD_ROWS + 1)
    ]
    audit = (
        read_table(spark, cfg.table_path("audit", "ingest_audit"))
        .filter(f"source = 'ad_spend' AND dt = '{DAY}'")
        .first()
    )
    assert audit.records_read == audit.records_accepted + audit.records_quarantined + audit.records_duplicate
    assert audit.records_quarantined >= BAD_ROWS
