"""The KPI charts of the UI (assets/kpi/charts.py), with hand-computed values.

Snapshot as of D = 2026-12-10 (window of 30 days: 2026-11-11..2026-12-10):

kpi_daily
  2026-11-10  gmv_ad 999.00                                  (outside the window: ignored)
  2026-12-09  gmv ad 60.00, organic 30.00, direct 10.00      roi 2.000000, net_roi 1.500000
  2026-12-10  gmv ad 20.00, organic  0.00, direct 30.00      roi 0.500000, net_roi null

return_attribution_daily (dt, attributed_pool, reexposure, orders, returned_orders)
  2026-11-10  ad none 100 50                                 (outside the window: ignored)
  2026-12-09  ad none 10 1, organic none 30 2                -> not re-exposed 3/40 = 0.075000
              ad organic 4 1, direct both 3 2, organic ad 1 0 -> re-exposed 3/8 = 0.375000
  2026-12-10  direct none 7 0                                -> not re-exposed 0/7 = 0.000000
              ad ad 2 1                                      -> re-exposed 1/2 = 0.500000
  window: not re-exposed 3/47 = 0.0638297.. -> 0.063830; re-exposed 4/10 = 0.400000

GMV bars (full bar = 100.00 = the largest day, 20 characters, cumulative half-up rounding):
  12-09: ad 60 -> 12, +organic 90 -> 18 (6), +direct 100 -> 20 (2)
  12-10: ad 20 -> 4, +organic 20 -> 4 (0), +direct 50 -> 10 (6)
Return-rate bars (full bar = 0.5, the largest rate): 0.075 -> 3, 0.375 -> 15, 0 -> none, 0.5 -> 20.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from dagster import MetadataValue

from assets.kpi import charts
from assets.kpi.charts import DayFigures

D = dt.date(2026, 12, 10)
DAY1 = dt.date(2026, 12, 9)

KPI_SCHEMA = (
    "dt DATE, gmv_ad DECIMAL(18,2), gmv_organic DECIMAL(18,2), gmv_direct DECIMAL(18,2), "
    "roi DECIMAL(18,6), net_roi DECIMAL(18,6), as_of DATE"
)
RETURN_SCHEMA = "dt DATE, attributed_pool STRING, reexposure STRING, orders LONG, returned_orders LONG, as_of DATE"


def _d(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


@pytest.fixture(scope="module")
def snapshots(spark):
    old = dt.date(2026, 11, 10)
    kpi = spark.createDataFrame(
        [
            (old, _d("999.00"), _d("0.00"), _d("0.00"), _d("1.000000"), _d("1.000000"), D),
            (DAY1, _d("60.00"), _d("30.00"), _d("10.00"), _d("2.000000"), _d("1.500000"), D),
            (D, _d("20.00"), _d("0.00"), _d("30.00"), _d("0.500000"), None, D),
        ],
        KPI_SCHEMA,
    )
    returns = spark.createDataFrame(
        [
            (old, "ad", "none", 100, 50, D),
            (DAY1, "ad", "none", 10, 1, D),
            (DAY1, "organic", "none", 30, 2, D),
            (DAY1, "ad", "organic", 4, 1, D),
            (DAY1, "direct", "both", 3, 2, D),
            (DAY1, "organic", "ad", 1, 0, D),
            (D, "direct", "none", 7, 0, D),
            (D, "ad", "ad", 2, 1, D),
        ],
        RETURN_SCHEMA,
    )
    return kpi, returns


EXPECTED_DAYS = [
    DayFigures(
        dt=DAY1,
        gmv_ad=Decimal("60.00"),
        gmv_organic=Decimal("30.00"),
        gmv_direct=Decimal("10.00"),
        roi=Decimal("2.000000"),
        net_roi=Decimal("1.500000"),
        orders_not_reexposed=40,
        returned_not_reexposed=3,
        orders_reexposed=8,
        returned_reexposed=3,
    ),
    DayFigures(
        dt=D,
        gmv_ad=Decimal("20.00"),
        gmv_organic=Decimal("0.00"),
        gmv_direct=Decimal("30.00"),
        roi=Decimal("0.500000"),
        net_roi=None,
        orders_not_reexposed=7,
        returned_not_reexposed=0,
        orders_reexposed=2,
        returned_reexposed=1,
    ),
]


def test_spark_aggregates_the_window_per_day_and_reexposure_class(snapshots):
    kpi, returns = snapshots
    days = charts.collect_day_figures(kpi, returns, D)
    assert days == EXPECTED_DAYS
    assert days[0].return_rate_not_reexposed == Decimal("0.075000")
    assert days[0].return_rate_reexposed == Decimal("0.375000")
    assert days[1].return_rate_not_reexposed == Decimal("0.000000")
    assert days[1].return_rate_reexposed == Decimal("0.500000")
    # a shorter window keeps only D
    assert [d.dt for d in charts.collect_day_figures(kpi, returns, D, days=1)] == [D]


def test_window_return_rates():
    assert charts.window_return_rates(EXPECTED_DAYS) == {
        "orders_not_reexposed": 47,
        "returned_not_reexposed": 3,
        "return_rate_not_reexposed": Decimal("0.063830"),
        "orders_reexposed": 10,
        "returned_reexposed": 4,
        "return_rate_reexposed": Decimal("0.400000"),
    }
    assert charts.window_return_rates([])["return_rate_reexposed"] is None


def test_ratio_and_bars_round_half_up():
    assert charts.count_ratio(1, 3) == Decimal("0.333333")
    assert charts.count_ratio(2, 3) == Decimal("0.666667")
    assert charts.count_ratio(1, 0) is None
    assert charts.bar(1, 8) == "█" * 3  # 2.5 -> 3
    assert charts.bar(Decimal("0.0125"), 1) == ""  # 0.25 -> 0
    assert charts.bar(None, 1) == "" and charts.bar(1, None) == "" and charts.bar(0, 5) == ""
    assert charts.bar(7, 5) == "█" * 20  # never longer than the full bar
    marks = {"a": "a", "b": "b", "c": "c"}
    # thirds of 20: ends 6.67 -> 7, 13.33 -> 13, 20: parts 7, 6, 7
    parts = {"a": Decimal(1), "b": Decimal(1), "c": Decimal(1)}
    assert charts.stacked_bar(parts, Decimal(3), marks) == "a" * 7 + "b" * 6 + "c" * 7


def test_gmv_roi_chart_lines():
    lines = charts.gmv_roi_chart(EXPECTED_DAYS).splitlines()
    assert lines[0] == "GMV by pool (█ ad, ▓ organic, ░ direct; full bar = 100.00), ROI and net ROI"
    assert lines[4] == (
        "| 2026-12-09 | 60.00 | 30.00 | 10.00 | `" + "█" * 12 + "▓" * 6 + "░" * 2 + "` | 2.000000 | 1.500000 |"
    )
    assert lines[5] == "| 2026-12-10 | 20.00 | 0.00 | 30.00 | `" + "█" * 4 + "░" * 6 + "` | 0.500000 | – |"
    assert len(lines) == 6
    assert charts.gmv_roi_chart([]) == "_no days in the snapshot_"


def test_return_rate_chart_lines():
    lines = charts.return_rate_chart(EXPECTED_DAYS).splitlines()
    assert lines[0] == "Return rate without (▒) vs with (█) lower-price re-exposure (full bar = 50.00%)"
    assert lines[4] == "| 2026-12-09 | 3/40 | 7.50% | `▒▒▒` | 3/8 | 37.50% | `" + "█" * 15 + "` |"
    assert lines[5] == "| 2026-12-10 | 0/7 | 0.00% |  | 1/2 | 50.00% | `" + "█" * 20 + "` |"


def test_figures_of_the_newest_cohort():
    figures = charts.kpi_daily_figures(EXPECTED_DAYS, D)
    assert {k: v for k, v in figures.items() if not k.startswith("chart_")} == {
        "gmv_ad_of_D": 20.0,
        "gmv_ad_of_D_exact": "20.00",
        "gmv_organic_of_D": 0.0,
        "gmv_organic_of_D_exact": "0.00",
        "gmv_direct_of_D": 30.0,
        "gmv_direct_of_D_exact": "30.00",
        "roi_of_D": 0.5,
        "net_roi_of_D": None,
    }
    returns = charts.return_attribution_figures(EXPECTED_DAYS, D)
    assert returns["return_rate_not_reexposed_of_D"] == 0.0
    assert returns["return_rate_reexposed_of_D"] == 0.5
    assert returns["return_rate_not_reexposed_window"] == 0.06383
    assert returns["return_rate_reexposed_window"] == 0.4
    assert (returns["orders_reexposed_window"], returns["returned_reexposed_window"]) == (10, 4)
    # no row for D in the snapshot: zeros and no ratios
    missing = charts.kpi_daily_figures(EXPECTED_DAYS[:1], D)
    assert missing["gmv_ad_of_D"] == 0.0 and missing["roi_of_D"] is None


def test_dagster_metadata_types(snapshots):
    kpi, returns = snapshots
    meta = charts.kpi_chart_metadata(kpi, returns, D)
    daily, ret = meta["kpi_daily"], meta["return_attribution_daily"]
    assert daily["gmv_direct_of_D"] == MetadataValue.float(30.0)
    assert daily["gmv_direct_of_D_exact"] == MetadataValue.text("30.00")
    assert daily["roi_of_D"] == MetadataValue.float(0.5)
    assert "net_roi_of_D" not in daily  # no point rather than a fake 0
    assert daily["chart_gmv_by_pool_roi"] == MetadataValue.md(charts.gmv_roi_chart(EXPECTED_DAYS))
    assert ret["return_rate_reexposed_window"] == MetadataValue.float(0.4)
    assert ret["orders_not_reexposed_window"] == MetadataValue.int(47)
    assert ret["chart_return_rate_reexposure"] == MetadataValue.md(charts.return_rate_chart(EXPECTED_DAYS))
