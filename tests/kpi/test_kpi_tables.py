"""SPEC §8 KPI tables on a small hand-built scenario; every expected value is worked out by hand.

Run date D = 2026-12-10, restatement window 30 days: business days [2026-11-11, 2026-12-10].

Cohort 2026-12-01 (d1) — settlement window still open (D < d1 + 15 = 2026-12-16):
  o1  u1 m1  ad c1    2 x 50.00 = 100.00  subsidy 10.00 (voucher organic: cross-pool)  pay 90.00
      r1 refunded 30.00 (found_cheaper, refunded 12-05, in window); r2 requested 15.00 (not refunded);
      r5 refunded then cancelled (latest version cancelled) -> not refunded
      settled = 100.00 x (1 - 30/90) = 66.666.. -> 66.67
  o2  u2 m1  organic  1 x 40.00           subsidy 5.00 (voucher organic: same pool)     pay 35.00
      r3 refunded 35.00 (quality_issue) -> settled = 40.00 x (1 - 35/35) = 0.00
  o3  u1 m2  direct   1 x 25.50           no subsidy                                    pay 25.50
      no return -> settled 25.50
  o4  u3 m2  ad c2    3 x 9.99 = 29.97    subsidy 2.00 (voucher ad: same pool)          pay 27.97
      r4 refunded 10.00 (found_cheaper); an earlier 'requested' version and a later (dt > D)
      'cancelled' version exist -> as of D it is refunded
      settled = 29.97 x (1 - 10/27.97) = 19.2549.. -> 19.25
  o5  u4 m1  direct   1 x 20.00           subsidy 3.00 (voucher ad: cross-pool)         pay 17.00
      no return -> settled 20.00
Spend on d1: c1 (m1) hour 10 = 60.00 restated to 70.00 (dt 12-02), hour 11 = 30.00 (a restatement
to 999.00 lands on 12-11 > D, ignored) -> 100.00; c2 (m2) 20.00; c3 (m2) 15.00, no order: unattributed.
Ledger (cohort d1): r5 refund 10.00 (12-02) and its reversal -10.00 (12-03); r1 33.33 (12-06);
r4 7.15 (12-07); r2 5.00 settled 12-11 > D (ignored).

Cohort 2026-11-11 (D-29, settlement window closed: D >= 11-26):
  o6  u5 m3 organic 1 x 80.00 pay 80.00; r7 refunded 8.00 on 11-20 (in window),
      r6 refunded 20.00 on 11-30 (19 days after: outside the 15-day window)
      settled = 80.00 x (1 - 8/80) = 72.00; refund_amount = 28.00
Cohort 2026-11-10 (D-30): o8, outside the window.
2026-11-12: only a ledger row (order o9 of m4 / c9, ad_fee_refund 4.00).
2026-11-20: only spend (c3, m2, 5.00, unattributed).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from assets.kpi.metrics import (
    KPI_CAMPAIGN_DAILY_COLUMNS,
    KPI_DAILY_COLUMNS,
    KPI_MERCHANT_DAILY_COLUMNS,
    KPI_TABLE_COLUMNS,
    RETURN_ATTRIBUTION_DAILY_COLUMNS,
    compute_kpi_tables,
    settled_amount,
    table_schema,
)
from pipelines.config import OnetrackConfig
from tests.kpi import builders as b

D = "2026-12-10"
D1 = b.day("2026-12-01")
D0 = b.day("2026-11-11")  # D - 29: first day of the window
CFG = OnetrackConfig()


def dec(text: str) -> Decimal:
    return Decimal(text)


@pytest.fixture(scope="module")
def tables(kpi_inputs):
    frames = compute_kpi_tables(kpi_inputs, b.day(D), CFG)
    return (
        {name: frame.collect() for name, frame in frames.items()}
        | {f"{name}__columns": frame.columns for name, frame in frames.items()}
        | {f"{name}__schema": frame.schema for name, frame in frames.items()}
    )


def test_columns_and_types(tables):
    assert tuple(tables["kpi_daily__columns"]) == KPI_DAILY_COLUMNS
    assert tuple(tables["kpi_merchant_daily__columns"]) == KPI_MERCHANT_DAILY_COLUMNS
    assert tuple(tables["kpi_campaign_daily__columns"]) == KPI_CAMPAIGN_DAILY_COLUMNS
    assert tuple(tables["return_attribution_daily__columns"]) == RETURN_ATTRIBUTION_DAILY_COLUMNS
    types = {f.name: f.dataType.simpleString() for f in tables["kpi_daily__schema"].fields}
    assert types["dt"] == "date" and types["as_of"] == "date"
    for money_column in (
        "payment_gmv",
        "gmv_ad",
        "ad_spend",
        "settled_gmv",
        "ad_fee_refund",
        "refund_amount",
    ):
        assert types[money_column] == "decimal(18,2)"
    for ratio_column in ("roi", "return_rate", "settlement_rate", "net_roi"):
        assert types[ratio_column] == "decimal(18,6)"
    assert types["orders"] == "bigint" and types["settlement_final"] == "boolean"
    for name in KPI_TABLE_COLUMNS:
        produced = [(f.name, f.dataType) for f in tables[f"{name}__schema"].fields]
        assert produced == [(f.name, f.dataType) for f in table_schema(name).fields], name
    # every count and money figure of every key is a number: a key with no orders, spend or
    # ledger rows of its own gets 0 and 0.00 (only ratios and the campaign's merchant may be null)
    for name in ("kpi_daily", "kpi_merchant_daily", "kpi_campaign_daily"):
        figures = [
            f.name
            for f in tables[f"{name}__schema"].fields
            if f.dataType.simpleString() in ("bigint", "decimal(18,2)")
        ]
        assert len(figures) >= 7, name
        nulls = {(c, tuple(row[:2])) for row in tables[name] for c in figures if row[c] is None}
        assert nulls == set(), (name, nulls)


def test_window_keys(tables):
    # keys: d1 (orders), D-29 (orders), 11-12 (ledger only), 11-20 (spend only); D-30 is out
    daily = b.by_key(tables["kpi_daily"], "dt")
    assert set(daily) == {D1, D0, b.day("2026-11-12"), b.day("2026-11-20")}
    assert all(row["as_of"] == b.day(D) for row in daily.values())


def test_kpi_daily_cohort_with_open_settlement_window(tables):
    row = b.by_key(tables["kpi_daily"], "dt")[D1]
    assert row["orders"] == 5  # o1..o5
    assert row["buyers"] == 4  # u1 (o1, o3), u2, u3, u4
    assert row["payment_gmv"] == dec("215.47")  # 100.00 + 40.00 + 25.50 + 29.97 + 20.00
    assert row["gmv_ad"] == dec("129.97")  # o1 100.00 + o4 29.97
    assert row["gmv_organic"] == dec("40.00")  # o2
    assert row["gmv_direct"] == dec("45.50")  # o3 25.50 + o5 20.00
    assert row["platform_subsidy"] == dec("20.00")  # 10 + 5 + 0 + 2 + 3
    assert row["cross_pool_subsidy"] == dec(
        "13.00"
    )  # o1 organic voucher on ad 10 + o5 ad voucher on direct 3
    assert row["ad_spend"] == dec("135.00")  # c1 70 (restated) + 30 + c2 20 + c3 15
    assert row["unattributed_spend"] == dec("15.00")  # c3
    assert row["roi"] == dec("0.962741")  # 129.97 / 135.00 = 0.9627407..
    assert row["returned_orders"] == 3  # o1 (r1), o2 (r3), o4 (r4); r5 cancelled, r2 requested
    assert row["return_rate"] == dec("0.600000")  # 3 / 5
    assert row["refund_amount"] == dec("75.00")  # 30 + 35 + 10
    assert row["settled_gmv"] == dec("131.42")  # 66.67 + 0.00 + 25.50 + 19.25 + 20.00
    assert row["settlement_rate"] == dec("0.609922")  # 131.42 / 215.47 = 0.6099224..
    assert row["settlement_final"] is False  # 12-10 < 12-01 + 15
    assert row["ad_fee_refund"] == dec("40.48")  # 10.00 - 10.00 + 33.33 + 7.15; 5.00 settled after D
    assert row["net_roi"] == dec("0.909014")  # (66.67 + 19.25) / (135.00 - 40.48) = 85.92 / 94.52


def test_kpi_daily_first_day_of_window(tables):
    row = b.by_key(tables["kpi_daily"], "dt")[D0]
    assert row["orders"] == 1 and row["buyers"] == 1
    assert row["payment_gmv"] == dec("80.00") and row["gmv_organic"] == dec("80.00")
    assert row["gmv_ad"] == dec("0.00") and row["gmv_direct"] == dec("0.00")
    assert row["ad_spend"] == dec("0.00") and row["roi"] is None  # no spend: ratio is null
    assert row["returned_orders"] == 1 and row["return_rate"] == dec("1.000000")
    assert row["refund_amount"] == dec("28.00")  # r7 8.00 + r6 20.00
    assert row["settled_gmv"] == dec("72.00")  # only r7 is within 15 days: 80 x (1 - 8/80)
    assert row["settlement_rate"] == dec("0.900000")  # 72 / 80
    assert row["settlement_final"] is True  # 12-10 >= 11-11 + 15
    assert row["ad_fee_refund"] == dec("0.00")
    assert row["net_roi"] is None  # 0 / (0 - 0)


def test_kpi_daily_ledger_only_and_spend_only_days(tables):
    daily = b.by_key(tables["kpi_daily"], "dt")
    ledger_day = daily[b.day("2026-11-12")]
    assert ledger_day["orders"] == 0 and ledger_day["payment_gmv"] == dec("0.00")
    assert ledger_day["ad_fee_refund"] == dec("4.00")
    assert ledger_day["return_rate"] is None and ledger_day["settlement_rate"] is None
    assert ledger_day["net_roi"] == dec("0.000000")  # 0.00 / (0.00 - 4.00)
    spend_day = daily[b.day("2026-11-20")]
    assert spend_day["orders"] == 0
    assert spend_day["ad_spend"] == dec("5.00") and spend_day["unattributed_spend"] == dec("5.00")
    assert spend_day["roi"] == dec("0.000000")  # 0.00 / 5.00
    assert spend_day["settlement_final"] is True  # 12-10 >= 11-20 + 15 = 12-05


def test_kpi_merchant_daily(tables):
    merchants = b.by_key(tables["kpi_merchant_daily"], "dt", "merchant_id")
    assert set(merchants) == {
        (D1, "m1"),
        (D1, "m2"),
        (D0, "m3"),
        (b.day("2026-11-12"), "m4"),
        (b.day("2026-11-20"), "m2"),
    }
    m1 = merchants[(D1, "m1")]  # o1, o2, o5
    assert (m1["orders"], m1["buyers"]) == (3, 3)
    assert m1["payment_gmv"] == dec("160.00")  # 100 + 40 + 20
    assert (m1["gmv_ad"], m1["gmv_organic"], m1["gmv_direct"]) == (dec("100.00"), dec("40.00"), dec("20.00"))
    assert m1["platform_subsidy"] == dec("18.00")  # 10 + 5 + 3
    assert m1["cross_pool_subsidy"] == dec("13.00")  # 10 + 3
    assert m1["ad_spend"] == dec("100.00") and m1["unattributed_spend"] == dec("0.00")  # c1
    assert m1["roi"] == dec("1.000000")  # 100 / 100
    assert m1["returned_orders"] == 2 and m1["return_rate"] == dec("0.666667")  # 2 / 3
    assert m1["refund_amount"] == dec("65.00")  # 30 + 35
    assert m1["settled_gmv"] == dec("86.67")  # 66.67 + 0.00 + 20.00
    assert m1["settlement_rate"] == dec("0.541688")  # 86.67 / 160 = 0.5416875, half-up
    assert m1["ad_fee_refund"] == dec("33.33")  # 10 - 10 + 33.33
    assert m1["net_roi"] == dec("1.000000")  # 66.67 / (100.00 - 33.33)
    m2 = merchants[(D1, "m2")]  # o3, o4; spend of c2 and c3
    assert (m2["orders"], m2["buyers"]) == (2, 2)
    assert m2["payment_gmv"] == dec("55.47")  # 25.50 + 29.97
    assert (m2["gmv_ad"], m2["gmv_organic"], m2["gmv_direct"]) == (dec("29.97"), dec("0.00"), dec("25.50"))
    assert m2["platform_subsidy"] == dec("2.00") and m2["cross_pool_subsidy"] == dec("0.00")
    assert m2["ad_spend"] == dec("35.00") and m2["unattributed_spend"] == dec("15.00")  # 20 + 15; c3
    assert m2["roi"] == dec("0.856286")  # 29.97 / 35 = 0.8562857..
    assert m2["returned_orders"] == 1 and m2["return_rate"] == dec("0.500000")
    assert m2["refund_amount"] == dec("10.00")
    assert m2["settled_gmv"] == dec("44.75")  # 25.50 + 19.25
    assert m2["settlement_rate"] == dec("0.806742")  # 44.75 / 55.47 = 0.8067423..
    assert m2["settlement_final"] is False
    assert m2["ad_fee_refund"] == dec("7.15")
    assert m2["net_roi"] == dec("0.691203")  # 19.25 / (35.00 - 7.15) = 19.25 / 27.85
    m4 = merchants[(b.day("2026-11-12"), "m4")]
    assert m4["orders"] == 0 and m4["ad_fee_refund"] == dec("4.00")


def test_kpi_campaign_daily(tables):
    campaigns = b.by_key(tables["kpi_campaign_daily"], "dt", "campaign_id")
    assert set(campaigns) == {
        (D1, "c1"),
        (D1, "c2"),
        (D1, "c3"),
        (b.day("2026-11-20"), "c3"),
        (b.day("2026-11-12"), "c9"),
    }
    c1 = campaigns[(D1, "c1")]
    assert c1["merchant_id"] == "m1"
    assert (c1["impressions"], c1["clicks"]) == (1500, 70)  # hour 10 restated 1000/50 + hour 11 500/20
    assert c1["ad_spend"] == dec("100.00")  # 70 + 30
    assert c1["attributed_orders"] == 1 and c1["gmv_ad"] == dec("100.00")  # o1
    assert c1["returned_orders"] == 1 and c1["allocated_ad_fee"] == dec("100.00")
    assert c1["roi"] == dec("1.000000") and c1["return_rate"] == dec("1.000000")
    assert c1["ad_fee_refund"] == dec("33.33")  # 10.00 - 10.00 + 33.33
    c2 = campaigns[(D1, "c2")]
    assert (c2["merchant_id"], c2["impressions"], c2["clicks"]) == ("m2", 300, 10)
    assert c2["ad_spend"] == dec("20.00") and c2["gmv_ad"] == dec("29.97")
    assert (c2["attributed_orders"], c2["returned_orders"]) == (1, 1)
    assert c2["allocated_ad_fee"] == dec("20.00")
    assert c2["roi"] == dec("1.498500")  # 29.97 / 20.00
    assert c2["return_rate"] == dec("1.000000") and c2["ad_fee_refund"] == dec("7.15")
    c3 = campaigns[(D1, "c3")]  # spend without an attributed order
    assert (c3["merchant_id"], c3["impressions"], c3["clicks"]) == ("m2", 200, 5)
    assert c3["ad_spend"] == dec("15.00") and c3["attributed_orders"] == 0
    assert c3["gmv_ad"] == dec("0.00") and c3["allocated_ad_fee"] == dec("0.00")
    assert c3["roi"] == dec("0.000000") and c3["return_rate"] is None
    c9 = campaigns[(b.day("2026-11-12"), "c9")]  # ledger only
    assert c9["merchant_id"] == "m4" and c9["ad_spend"] == dec("0.00") and c9["roi"] is None
    assert c9["ad_fee_refund"] == dec("4.00")


def test_return_attribution_daily(tables):
    rows = b.by_key(tables["return_attribution_daily"], "dt", "attributed_pool", "reexposure")
    assert set(rows) == {
        (D1, "ad", "ad"),
        (D1, "organic", "both"),
        (D1, "direct", "none"),
        (D0, "organic", "none"),
    }
    ad_ad = rows[(D1, "ad", "ad")]  # o1, o4
    assert (ad_ad["orders"], ad_ad["returned_orders"]) == (2, 2)
    assert ad_ad["return_rate"] == dec("1.000000")
    assert ad_ad["refund_amount"] == dec("40.00")  # r1 30 + r4 10
    assert ad_ad["found_cheaper_returns"] == 2  # r1, r4 (r5 is found_cheaper but cancelled)
    organic_both = rows[(D1, "organic", "both")]  # o2
    assert (organic_both["orders"], organic_both["returned_orders"]) == (1, 1)
    assert organic_both["refund_amount"] == dec("35.00") and organic_both["found_cheaper_returns"] == 0
    direct_none = rows[(D1, "direct", "none")]  # o3, o5
    assert (direct_none["orders"], direct_none["returned_orders"]) == (2, 0)
    assert direct_none["return_rate"] == dec("0.000000") and direct_none["refund_amount"] == dec("0.00")
    early = rows[(D0, "organic", "none")]  # o6 has no re-exposure row: none
    assert (early["orders"], early["returned_orders"], early["refund_amount"]) == (1, 1, dec("28.00"))


def test_window_follows_config(kpi_inputs):
    # restatement window of 21 days: [11-20, 12-10]; 11-11 and 11-12 drop out
    from dataclasses import replace

    frames = compute_kpi_tables(kpi_inputs, b.day(D), replace(CFG, restatement_window_days=21))
    days = {row["dt"] for row in frames["kpi_daily"].select("dt").collect()}
    assert days == {D1, b.day("2026-11-20")}


def test_settled_amount_rounds_half_up_exactly(spark):
    frame = spark.createDataFrame(
        [
            ("half", Decimal("10.00"), Decimal("8.00"), Decimal("7.98")),  # 10 x 0.02/8 = 0.025 -> 0.03
            ("none", Decimal("10.00"), Decimal("8.00"), Decimal("0.00")),  # no refund: 10.00
            ("over", Decimal("10.00"), Decimal("8.00"), Decimal("9.00")),  # min(1, 9/8) = 1: 0.00
            ("third", Decimal("100.00"), Decimal("90.00"), Decimal("30.00")),  # 66.666.. -> 66.67
            ("subsidized", Decimal("10.00"), Decimal("0.00"), Decimal("0.00")),  # p = 0, no refund: 10.00
        ],
        "case STRING, order_amount DECIMAL(18,2), pay_amount DECIMAL(18,2), refunded DECIMAL(18,2)",
    )
    from pyspark.sql import functions as F

    result = {
        row["case"]: row["settled"]
        for row in frame.select(
            "case",
            settled_amount(F.col("order_amount"), F.col("pay_amount"), F.col("refunded")).alias("settled"),
        ).collect()
    }
    assert result == {
        "half": dec("0.03"),
        "none": dec("10.00"),
        "over": dec("0.00"),
        "third": dec("66.67"),
        "subsidized": dec("10.00"),
    }


def test_window_must_be_covered_by_the_attribution_scope(kpi_inputs):
    from dataclasses import replace

    with pytest.raises(ValueError, match="ledger_lookback_days"):
        compute_kpi_tables(kpi_inputs, b.day(D), replace(CFG, ledger_lookback_days=20))
