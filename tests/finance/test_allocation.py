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


def test_incremental_allocation_equals_the_full_allocation_day_after_day(spark, tmp_path):
    """The versioned allocation snapshot, committed day after day as the changes from the previous
    day's (only the campaign-days whose orders or spend changed are allocated again), holds
    exactly the full allocation: a restatement landing later, a new order in a campaign-day, an
    order becoming unpaid, a late click moving an order to a campaign, spend without orders
    restated (its unattributed row, null order_id, updated in place), an order leaving its
    campaign-day, and a campaign-day leaving the scope; the changed campaign-days found by
    comparing the snapshots or from the attribution's changes."""
    from assets.finance.allocation import allocation_changes
    from assets.finance.asof import scope_start
    from assets.finance.ledger import allocation_table
    from pipelines.config import OnetrackConfig

    def order(order_id, amount, paid, landed, **kw):
        return {"order_id": order_id, "user_id": f"u-{order_id}", "unit_price": amount, "paid_at": paid,
                "dt": landed, **kw}

    def click(order_id, campaign, time, landed):
        return {"event_id": f"e-{order_id}-{landed}", "user_id": f"u-{order_id}", "campaign_id": campaign,
                "pool": "ad", "event_time": time, "dt": landed}

    p1, p2 = "2026-11-01T12:00:00+08:00", "2026-11-02T12:00:00+08:00"
    orders = orders_df(
        spark,
        [
            order("o1", "10.00", p1, "2026-11-01"),
            order("o2", "20.00", p1, "2026-11-01"),
            order("o2", "20.00", None, "2026-11-03", status="cancelled", updated_at="2026-11-03T09:00:00+08:00"),
            order("o3", "30.00", p1, "2026-11-01"),
            order("o4", "40.00", p2, "2026-11-02"),
            order("o5", "50.00", p1, "2026-11-01"),
            # o6 alone in its campaign-day, cancelled later: only its row before says where it was
            order("o6", "60.00", p2, "2026-11-02"),
            order(
                "o6", "60.00", None, "2026-11-04", status="cancelled", updated_at="2026-11-04T09:00:00+08:00"
            ),
            order("old", "5.00", "2026-10-29T12:00:00+08:00", "2026-11-01"),
        ],
    )
    traffic = traffic_df(
        spark,
        [
            click("o1", "c1", "2026-11-01T11:00:00+08:00", "2026-11-01"),
            click("o2", "c1", "2026-11-01T11:00:00+08:00", "2026-11-01"),
            click("o3", "c2", "2026-11-01T11:00:00+08:00", "2026-11-01"),
            click("o4", "c1", "2026-11-02T11:00:00+08:00", "2026-11-02"),
            click("o5", "c2", "2026-11-01T11:30:00+08:00", "2026-11-03"),  # late: o5 joins c2
            click("o6", "c4", "2026-11-02T11:00:00+08:00", "2026-11-02"),
            click("old", "c1", "2026-10-29T11:00:00+08:00", "2026-11-01"),
        ],
    )

    def spend(campaign, stat_date, amount, landed, hour=10):
        return {"stat_date": stat_date, "stat_hour": hour, "campaign_id": campaign, "spend": amount, "dt": landed}

    ad_spend = ad_spend_df(
        spark,
        [
            spend("c1", "2026-11-01", "10.00", "2026-11-01"),
            spend("c1", "2026-11-01", "12.00", "2026-11-03"),  # restated later
            spend("c2", "2026-11-01", "5.00", "2026-11-01"),
            spend("c3", "2026-11-02", "3.00", "2026-11-02"),  # no attributed order
            spend("c3", "2026-11-02", "3.50", "2026-11-04"),  # ... restated: its row is updated
            spend("c1", "2026-11-02", "7.00", "2026-11-02"),
            spend("c4", "2026-11-02", "6.00", "2026-11-02"),
            spend("c1", "2026-10-29", "1.00", "2026-11-01"),
        ],
    )
    days_ = [dt.date(2026, 11, d) for d in (1, 2, 3, 4)]
    lookback = 3  # 2026-10-29 leaves the scope on 2026-11-02
    attribution = {d: attribute_orders(orders, traffic, d, lookback_days=lookback).cache() for d in days_}
    full = {d: allocate_ad_fees(attribution[d], ad_spend, d, lookback_days=lookback).cache() for d in days_}
    fee = lambda d: {  # noqa: E731
        (r["stat_date"].day, r["campaign_id"], r["order_id"]): r["allocated_ad_fee"] for r in full[d].collect()
    }
    assert fee(days_[0]) == {
        (29, "c1", "old"): Decimal("1.00"),
        (1, "c1", "o1"): Decimal("3.33"), (1, "c1", "o2"): Decimal("6.67"), (1, "c2", "o3"): Decimal("5.00"),
    }
    assert fee(days_[3]) == {
        (1, "c1", "o1"): Decimal("12.00"),
        (1, "c2", "o3"): Decimal("1.88"), (1, "c2", "o5"): Decimal("3.12"),  # 500*30/80=187.5 -> 187 r 40
        (2, "c1", "o4"): Decimal("7.00"), (2, "c3", None): None,
        (2, "c4", None): None,  # o6 cancelled: its campaign-day's spend is unattributed again
    }
    unattributed = {(r["campaign_id"], r["unattributed_spend"]) for r in full[days_[3]].collect()
                    if r["order_id"] is None}  # fmt: skip
    assert unattributed == {("c3", Decimal("3.50")), ("c4", Decimal("6.00"))}

    def changed_rows(previous, day_):
        """What the attribution's change data feed holds: each changed order's row before and after."""
        before, now = (attribution[d].drop("as_of") for d in (previous, day_))
        return before.exceptAll(now).unionByName(now.exceptAll(before))

    # the campaign-days to allocate again found by comparing the snapshots, or from their changes
    for from_changes in (False, True):
        table = allocation_table(spark, OnetrackConfig(warehouse_dir=str(tmp_path / f"w{from_changes}")))
        table.write_full(full[days_[0]], days_[0], None)
        removed_keys = set()
        for previous, day_ in zip(days_, days_[1:], strict=False):
            upserts, removed = allocation_changes(
                attribution[day_],
                attribution[previous],
                table.read(previous),
                previous,
                ad_spend,
                day_,
                lookback_days=lookback,
                changed_rows=changed_rows(previous, day_) if from_changes else None,
            )
            removed_keys |= {
                (day_.day, r["stat_date"].day, r["campaign_id"], r["order_id"]) for r in removed.collect()
            }
            table.write_changes(
                previous, day_, upserts, removed, None, drop_below=scope_start(day_, lookback)
            )
            chained, expected = table.read(day_), full[day_]
            assert chained.count() == expected.count(), (day_, from_changes)
            assert chained.exceptAll(expected).isEmpty() and expected.exceptAll(chained).isEmpty(), day_
        # o2 cancelled on 11-03, o6 on 11-04; 10-29 leaves the scope by its partition, not as keys
        assert removed_keys == {(3, 1, "c1", "o2"), (4, 2, "c4", "o6")}, from_changes
