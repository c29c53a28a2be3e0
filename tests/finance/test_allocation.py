"""SPEC §5 ad-fee allocation by largest remainder, spend after restatement."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from assets.finance.allocation import allocate_ad_fees
from assets.finance.attribution import attribute_orders
from assets.finance.schemas import AD_FEE_ALLOCATION_SCHEMA
from tests.finance.factory import ad_spend_df, orders_df, traffic_df

D = dt.date(2026, 11, 10)


def _order(order_id, amount, campaign, paid="2026-11-08T12:00:00+08:00"):
    """An order with its own user, clicked on campaign ``campaign`` one hour before paying."""
    return (
        {"order_id": order_id, "user_id": f"u-{order_id}", "unit_price": amount, "paid_at": paid},
        {
            "event_id": f"e-{order_id}",
            "user_id": f"u-{order_id}",
            "campaign_id": campaign,
            "pool": "ad",
            "event_time": paid.replace("T12", "T11"),
        },
    )


def test_largest_remainder_and_restatement(spark):
    pairs = [
        # c1 on 11-08: three equal orders of 50.00, spend 100.00
        _order("oc", "50.00", "c1"),
        _order("oa", "50.00", "c1"),
        _order("ob", "50.00", "c1"),
        # c2 on 11-08: amounts 1.00, 2.00, 4.00, spend 10.00
        _order("x1", "1.00", "c2"),
        _order("x2", "2.00", "c2"),
        _order("x4", "4.00", "c2"),
        # c4 on 11-08: attributed but no spend row at all -> fee 0
        _order("z1", "30.00", "c4"),
        # c1 on 11-09: a different campaign-day of the same campaign, spend 0.01 over 2 equal orders
        _order("q2", "10.00", "c1", paid="2026-11-09T12:00:00+08:00"),
        _order("q1", "10.00", "c1", paid="2026-11-09T12:00:00+08:00"),
    ]
    orders = orders_df(spark, [o for o, _ in pairs] + [{"order_id": "d1", "user_id": "nobody"}])
    traffic = traffic_df(spark, [e for _, e in pairs])
    spend = ad_spend_df(
        spark,
        [
            # c1 11-08: hour 10 = 60.00; hour 11 first 50.00, restated to 40.00 the next day;
            # a restatement landing after D (dt 11-11) is not known yet -> 60.00 + 40.00 = 100.00
            {"stat_date": "2026-11-08", "stat_hour": 10, "campaign_id": "c1", "spend": "60.00"},
            {"stat_date": "2026-11-08", "stat_hour": 11, "campaign_id": "c1", "spend": "50.00"},
            {
                "stat_date": "2026-11-08",
                "stat_hour": 11,
                "campaign_id": "c1",
                "spend": "40.00",
                "dt": "2026-11-09",
            },
            {
                "stat_date": "2026-11-08",
                "stat_hour": 11,
                "campaign_id": "c1",
                "spend": "999.00",
                "dt": "2026-11-11",
            },
            # restated within one landing folder: the later line wins (line numbers increase)
            {"stat_date": "2026-11-08", "stat_hour": 3, "campaign_id": "c2", "spend": "1.00"},
            {"stat_date": "2026-11-08", "stat_hour": 3, "campaign_id": "c2", "spend": "10.00"},
            # c3: spend but no attributed order -> unattributed
            {
                "stat_date": "2026-11-08",
                "stat_hour": 1,
                "campaign_id": "c3",
                "advertiser_id": "m3",
                "spend": "5.00",
            },
            {"stat_date": "2026-11-09", "stat_hour": 1, "campaign_id": "c1", "spend": "0.01"},
        ],
    )
    attribution = attribute_orders(orders, traffic, D)
    result = allocate_ad_fees(attribution, spend, D)
    assert [(f.name, f.dataType) for f in result.schema] == [
        (f.name, f.dataType) for f in AD_FEE_ALLOCATION_SCHEMA
    ]
    rows = {(r["stat_date"].isoformat(), r["campaign_id"], r["order_id"]): r for r in result.collect()}
    fees = {k: r["allocated_ad_fee"] for k, r in rows.items()}
    assert fees == {
        # 10000 fen * 5000 / 15000 = 3333.33 each -> floor 3333 x 3 = 9999, 1 fen left; equal
        # remainders -> the smallest order_id (oa) gets it: 33.34 + 33.33 + 33.33 = 100.00
        ("2026-11-08", "c1", "oa"): Decimal("33.34"),
        ("2026-11-08", "c1", "ob"): Decimal("33.33"),
        ("2026-11-08", "c1", "oc"): Decimal("33.33"),
        # 1000 fen over 100/200/400 (total 700):
        #   x1: 100000/700 = 142 r 600; x2: 200000/700 = 285 r 500; x4: 400000/700 = 571 r 300
        #   floors add up to 998 -> 2 fen to the largest remainders x1 (600) and x2 (500)
        #   -> 1.43 + 2.86 + 5.71 = 10.00
        ("2026-11-08", "c2", "x1"): Decimal("1.43"),
        ("2026-11-08", "c2", "x2"): Decimal("2.86"),
        ("2026-11-08", "c2", "x4"): Decimal("5.71"),
        ("2026-11-08", "c3", None): None,
        ("2026-11-08", "c4", "z1"): Decimal("0.00"),
        # 1 fen over two equal orders: floors 0 + 0, the fen to q1 (smaller order_id)
        ("2026-11-09", "c1", "q1"): Decimal("0.01"),
        ("2026-11-09", "c1", "q2"): Decimal("0.00"),
    }
    assert rows[("2026-11-08", "c1", "oa")]["campaign_spend"] == Decimal("100.00")
    assert rows[("2026-11-08", "c1", "oa")]["unattributed_spend"] == Decimal("0.00")
    unattributed = rows[("2026-11-08", "c3", None)]
    assert (
        unattributed["campaign_spend"],
        unattributed["unattributed_spend"],
        unattributed["advertiser_id"],
    ) == (Decimal("5.00"), Decimal("5.00"), "m3")
    # no spend row: spend 0, advertiser taken from the order's merchant
    assert (
        rows[("2026-11-08", "c4", "z1")]["campaign_spend"],
        rows[("2026-11-08", "c4", "z1")]["advertiser_id"],
    ) == (Decimal("0.00"), "m1")
