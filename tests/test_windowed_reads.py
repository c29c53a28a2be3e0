"""Windowed reads of silver prune the landing partitions by the landing rule (DESIGN.md).

A record cannot land more than a day before it happened, so a read that needs records from day
``d`` on skips the landing partitions before ``d - 1``. These tests put a record that breaks the
rule (landed two days or more before its own time) in an old partition and check it is not seen:
the read does not reach that partition, which is what keeps a day's cost flat as history grows.
Records in partitions inside the bound are seen, including one landed a day early.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from assets.finance.asof import campaign_day_spend
from assets.kpi.inputs import ad_spend_as_of, returns_as_of
from tests.finance.factory import ad_spend_df, returns_df

D = dt.date(2026, 11, 10)
FIRST = dt.date(2026, 11, 5)  # first stat_date / paid date of the window: partitions from 11-04


def _spend(spark):
    def row(hour, amount, landed, stat_date="2026-11-05"):
        return {"stat_date": stat_date, "stat_hour": hour, "campaign_id": "c1", "spend": amount, "dt": landed}

    return ad_spend_df(
        spark,
        [
            row(10, "1.00", "2026-11-05"),
            row(11, "2.00", "2026-11-04"),  # a day early: allowed, read
            row(12, "4.00", "2026-11-03"),  # two days early: breaks the rule, not read
            row(10, "8.00", "2026-11-01", stat_date="2026-11-04"),  # before the window anyway
        ],
    )


def test_spend_of_the_window_reads_from_the_day_before_its_first_stat_date(spark):
    spend = _spend(spark)
    hours = {r["stat_hour"] for r in ad_spend_as_of(spend, D, FIRST).collect()}
    assert hours == {10, 11}
    days = {(r["stat_date"], r["campaign_spend"]) for r in campaign_day_spend(spend, D, FIRST).collect()}
    assert days == {(FIRST, Decimal("3.00"))}
    # without a window, every partition is read (the hour landed early is there)
    everything = ad_spend_as_of(spend, D).filter("stat_date = DATE'2026-11-05'")
    assert {r["stat_hour"] for r in everything.collect()} == {10, 11, 12}


def test_returns_of_the_window_read_from_the_day_before_its_first_paid_date(spark):
    returns = returns_df(
        spark,
        [
            {"return_id": "r1", "order_id": "o1", "dt": "2026-11-06"},
            {"return_id": "r2", "order_id": "o2", "dt": "2026-11-04"},  # a day before: read
            {"return_id": "r3", "order_id": "o3", "dt": "2026-11-03"},  # too early: not read
        ],
    )
    assert {r["return_id"] for r in returns_as_of(returns, D, FIRST).collect()} == {"r1", "r2"}
    assert {r["return_id"] for r in returns_as_of(returns, D).collect()} == {"r1", "r2", "r3"}


def test_reexposure_cut_reads_returns_from_the_day_before_the_first_paid_date(spark):
    """The first return request of each order of the snapshot (the re-exposure cut) is read from
    the day before the snapshot's first paid date: a request landed earlier breaks the rule."""
    from assets.kpi.reexposure import _orders_with_cut
    from tests.kpi import builders as B

    snapshot = B.order_attribution(
        spark,
        [
            {"order_id": "o1", "paid_at": "2026-11-05T10:00:00", "amount": "10.00", "as_of": "2026-11-10"},
            {"order_id": "o2", "paid_at": "2026-11-08T10:00:00", "amount": "10.00", "as_of": "2026-11-10"},
        ],
    )
    returns = B.returns(
        spark,
        [
            # landed a day before o1's payment, requested after it: allowed, read
            {"return_id": "r1", "order_id": "o1", "status": "requested",
             "requested_at": "2026-11-06T09:00:00", "dt": "2026-11-04"},
            # landed two days before the first paid date: breaks the rule, not read
            {"return_id": "r2", "order_id": "o2", "status": "requested",
             "requested_at": "2026-11-09T09:00:00", "dt": "2026-11-03"},
        ],
    )
    cut = {r["order_id"]: r["first_requested_at"] for r in _orders_with_cut(snapshot, returns, D).collect()}
    assert cut["o1"] is not None and cut["o2"] is None
