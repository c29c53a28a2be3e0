"""SPEC §4 attribution: window edges, ties, as-of rule, business-day boundaries."""

from __future__ import annotations

import datetime as dt

from assets.finance.attribution import attribute_orders, attribute_orders_incremental
from assets.finance.schemas import ORDER_ATTRIBUTION_SCHEMA
from tests.finance.factory import orders_df, traffic_df

D = dt.date(2026, 11, 10)
PAID = "2026-11-08T12:00:00+08:00"


def test_attribution_window_edges_and_ties(spark):
    # Every order has its own user so that clicks only touch the order they are meant for.
    orders = orders_df(
        spark,
        [
            {"order_id": "o1", "user_id": "u1", "paid_at": PAID},
            {"order_id": "o2", "user_id": "u2", "paid_at": PAID},
            {"order_id": "o3", "user_id": "u3", "paid_at": PAID},
            {"order_id": "o4", "user_id": "u4", "paid_at": PAID},
            {"order_id": "o5", "user_id": "u5", "paid_at": PAID},
            {"order_id": "o6", "user_id": "u6", "paid_at": PAID},
            # never paid: not a paid order
            {"order_id": "o7", "user_id": "u7", "paid_at": None, "updated_at": PAID},
            # paid, then cancelled: still a paid order (latest version has paid_at), status cancelled
            {"order_id": "o8", "user_id": "u8", "paid_at": PAID, "status": "paid"},
            {
                "order_id": "o8",
                "user_id": "u8",
                "paid_at": PAID,
                "status": "cancelled",
                "updated_at": "2026-11-09T09:00:00+08:00",
                "dt": "2026-11-09",
            },
            # landed after D: not known as of D
            {"order_id": "o9", "user_id": "u9", "paid_at": PAID, "dt": "2026-11-11"},
            # its only click landed after D
            {"order_id": "o10", "user_id": "u10", "paid_at": PAID},
            # paid at 16:30 UTC = 00:30 on the 4th in Shanghai
            {"order_id": "o11", "user_id": "u11", "paid_at": "2026-11-03T16:30:00+00:00"},
            # a paid version superseded by an unpaid one (later updated_at): not paid as of D
            {"order_id": "o12", "user_id": "u12", "paid_at": PAID},
            {
                "order_id": "o12",
                "user_id": "u12",
                "paid_at": None,
                "status": "cancelled",
                "updated_at": "2026-11-09T10:00:00+08:00",
                "dt": "2026-11-09",
            },
        ],
    )
    traffic = traffic_df(
        spark,
        [
            # o1: exactly 7 days before paid_at -> inside the window
            {
                "event_id": "e1",
                "user_id": "u1",
                "pool": "ad",
                "campaign_id": "c1",
                "event_time": "2026-11-01T12:00:00+08:00",
            },
            # o2: 7 days + 1 s before -> outside
            {
                "event_id": "e2",
                "user_id": "u2",
                "pool": "ad",
                "campaign_id": "c1",
                "event_time": "2026-11-01T11:59:59+08:00",
            },
            # o3: 1 s after paid_at -> outside; an organic click at paid_at exactly -> inside, wins
            {
                "event_id": "e3a",
                "user_id": "u3",
                "pool": "ad",
                "campaign_id": "c1",
                "event_time": "2026-11-08T12:00:01+08:00",
            },
            {"event_id": "e3b", "user_id": "u3", "pool": "organic", "event_time": PAID},
            # o4: ad and organic at the same instant -> ad, although the organic event_id is smaller
            {
                "event_id": "e4a",
                "user_id": "u4",
                "pool": "organic",
                "event_time": "2026-11-08T11:00:00+08:00",
            },
            {
                "event_id": "e4z",
                "user_id": "u4",
                "pool": "ad",
                "campaign_id": "c4",
                "event_time": "2026-11-08T11:00:00+08:00",
            },
            # an older ad click that loses to the later ones
            {
                "event_id": "e4b",
                "user_id": "u4",
                "pool": "ad",
                "campaign_id": "c9",
                "event_time": "2026-11-08T10:00:00+08:00",
            },
            # o5: same pool, same instant -> smaller event_id
            {
                "event_id": "e5b",
                "user_id": "u5",
                "pool": "organic",
                "event_time": "2026-11-07T08:00:00+08:00",
            },
            {
                "event_id": "e5a",
                "user_id": "u5",
                "pool": "organic",
                "event_time": "2026-11-07T08:00:00+08:00",
            },
            # o6: an impression is not a touchpoint; a click on another product neither
            {
                "event_id": "e6a",
                "user_id": "u6",
                "event_type": "impression",
                "campaign_id": "c1",
                "event_time": "2026-11-08T11:00:00+08:00",
            },
            {
                "event_id": "e6b",
                "user_id": "u6",
                "product_id": "p2",
                "campaign_id": "c1",
                "event_time": "2026-11-08T11:00:00+08:00",
            },
            # o10: click landed after D
            {
                "event_id": "e10",
                "user_id": "u10",
                "campaign_id": "c1",
                "event_time": "2026-11-08T11:00:00+08:00",
                "dt": "2026-11-11",
            },
            # o11: ad click the evening before (Shanghai time)
            {
                "event_id": "e11",
                "user_id": "u11",
                "campaign_id": "c11",
                "event_time": "2026-11-03T23:00:00+08:00",
                "dt": "2026-11-04",
            },
            # a duplicate landing of e1 in a later folder is the same event
            {
                "event_id": "e1",
                "user_id": "u1",
                "pool": "ad",
                "campaign_id": "c1",
                "event_time": "2026-11-01T12:00:00+08:00",
                "dt": "2026-11-03",
            },
        ],
    )
    result = attribute_orders(orders, traffic, D, window_days=7, lookback_days=60)
    assert [(f.name, f.dataType) for f in result.schema] == [
        (f.name, f.dataType) for f in ORDER_ATTRIBUTION_SCHEMA
    ]
    rows = {r["order_id"]: r for r in result.collect()}

    assert sorted(rows) == ["o1", "o10", "o11", "o2", "o3", "o4", "o5", "o6", "o8"]
    got = {k: (r["attributed_pool"], r["campaign_id"], r["touch_event_id"]) for k, r in rows.items()}
    assert got == {
        "o1": ("ad", "c1", "e1"),
        "o2": ("direct", None, None),
        "o3": ("organic", None, "e3b"),
        "o4": ("ad", "c4", "e4z"),
        "o5": ("organic", None, "e5a"),
        "o6": ("direct", None, None),
        "o8": ("direct", None, None),
        "o10": ("direct", None, None),
        "o11": ("ad", "c11", "e11"),
    }
    assert rows["o11"]["paid_date"] == dt.date(2026, 11, 4)
    assert rows["o1"]["paid_date"] == dt.date(2026, 11, 8)
    assert all(r["as_of"] == D for r in rows.values())


def test_attribution_scope_and_config_window(spark):
    orders = orders_df(
        spark,
        [
            {"order_id": "old", "paid_at": "2026-09-10T23:59:59+08:00", "dt": "2026-09-10"},
            {"order_id": "edge", "user_id": "u2", "paid_at": "2026-09-11T00:00:00+08:00", "dt": "2026-09-11"},
        ],
    )
    traffic = traffic_df(
        spark,
        [
            {
                "event_id": "e",
                "user_id": "u2",
                "campaign_id": "c1",
                "event_time": "2026-09-08T00:00:00+08:00",
                "dt": "2026-09-08",
            }
        ],
    )
    # lookback 60 days from 2026-11-10 -> first paid date 2026-09-11
    rows = attribute_orders(orders, traffic, D, window_days=2, lookback_days=60).collect()
    assert [r["order_id"] for r in rows] == ["edge"]
    # the click is 3 days before paid_at: outside a 2-day window, inside a 3-day one
    assert rows[0]["attributed_pool"] == "direct"
    rows3 = attribute_orders(orders, traffic, D, window_days=3, lookback_days=60).collect()
    assert rows3[0]["attributed_pool"] == "ad"


def _same(a, b) -> bool:
    return a.count() == b.count() and a.exceptAll(b).isEmpty() and b.exceptAll(a).isEmpty()


def test_incremental_attribution_equals_the_full_recompute_day_after_day(spark):
    """Day by day from the previous day's snapshot (and once across a gap of two days), the
    incremental attribution gives exactly the rows of the full recompute, through: late clicks that
    take over a touch (later time; same time and pool ad; same time and pool, smaller event_id),
    an order whose product changes, one that becomes unpaid, a status-only update, a new order,
    clicks landing for an order not yet landed, a late click giving a direct order its touch, a
    stale version landing days after the order's latest one, and orders leaving the lookback
    scope."""
    days_ = [dt.date(2026, 11, d) for d in (1, 2, 3, 4, 5)]
    t = "2026-11-01T12:00:00+08:00"
    orders = orders_df(
        spark,
        [
            {"order_id": "a", "user_id": "ua", "paid_at": t, "dt": "2026-11-01"},
            {"order_id": "b", "user_id": "ub", "paid_at": t, "dt": "2026-11-01"},
            {"order_id": "c", "user_id": "uc", "paid_at": t, "dt": "2026-11-01"},
            {"order_id": "d", "user_id": "ud", "paid_at": t, "dt": "2026-11-01"},
            # product changes on the 3rd: its touch must be looked up again
            {"order_id": "e", "user_id": "ue", "paid_at": t, "dt": "2026-11-01"},
            {"order_id": "e", "user_id": "ue", "product_id": "p2", "paid_at": t,
             "updated_at": "2026-11-03T09:00:00+08:00", "dt": "2026-11-03"},
            # becomes unpaid on the 4th
            {"order_id": "f", "user_id": "uf", "paid_at": t, "dt": "2026-11-01"},
            {"order_id": "f", "user_id": "uf", "paid_at": None, "status": "cancelled",
             "updated_at": "2026-11-04T09:00:00+08:00", "dt": "2026-11-04"},
            # status-only update on the 2nd, keeps its touch
            {"order_id": "g", "user_id": "ug", "paid_at": t, "dt": "2026-11-01"},
            {"order_id": "g", "user_id": "ug", "paid_at": t, "status": "shipped",
             "updated_at": "2026-11-02T09:00:00+08:00", "dt": "2026-11-02"},
            # lands on the 4th; its click landed on the 2nd
            {"order_id": "h", "user_id": "uh", "paid_at": "2026-11-03T20:00:00+08:00", "dt": "2026-11-04"},
            # shipped (2 items) at 14:00 (landed the 1st); a stale version stamped 13:00 lands on the
            # 5th: the order's latest version is still the one landed four days earlier, so its
            # quantity stays 2 (the bound on the versions read goes back to the stale version's day)
            {"order_id": "j", "user_id": "uj", "paid_at": t, "updated_at": "2026-11-01T12:00:00+08:00",
             "dt": "2026-11-01"},
            {"order_id": "j", "user_id": "uj", "paid_at": t, "status": "shipped", "quantity": 2,
             "updated_at": "2026-11-01T14:00:00+08:00", "dt": "2026-11-01"},
            {"order_id": "j", "user_id": "uj", "paid_at": t, "status": "paid",
             "updated_at": "2026-11-01T13:00:00+08:00", "dt": "2026-11-05"},
            # direct until a click from before its payment lands on the 3rd
            {"order_id": "k", "user_id": "uk", "paid_at": t, "dt": "2026-11-01"},
            # paid on 10-30: in the 4-day lookback scope until the 2nd, then out
            {"order_id": "old", "user_id": "uo", "paid_at": "2026-10-30T12:00:00+08:00", "dt": "2026-11-01"},
        ],
    )
    click = lambda e, user, time, land, pool="ad", **kw: {  # noqa: E731
        "event_id": e, "user_id": user, "event_time": time, "dt": land, "pool": pool, **kw
    }
    traffic = traffic_df(
        spark,
        [
            click("a1", "ua", "2026-11-01T10:00:00+08:00", "2026-11-01", campaign_id="ca"),
            click("a2", "ua", "2026-11-01T11:00:00+08:00", "2026-11-02", pool="organic"),  # later: wins
            click("b1", "ub", "2026-11-01T11:00:00+08:00", "2026-11-01", pool="organic"),
            click("b2", "ub", "2026-11-01T11:00:00+08:00", "2026-11-03", campaign_id="cb"),  # tie: ad wins
            click("c2", "uc", "2026-11-01T11:00:00+08:00", "2026-11-01", campaign_id="c1"),
            click("c1", "uc", "2026-11-01T11:00:00+08:00", "2026-11-02", campaign_id="c9"),  # smaller id
            click("d1", "ud", "2026-11-01T11:00:00+08:00", "2026-11-01"),
            click("d0", "ud", "2026-11-01T10:00:00+08:00", "2026-11-03"),  # earlier: loses
            click("e1", "ue", "2026-11-01T11:00:00+08:00", "2026-11-01"),
            click("e2", "ue", "2026-11-01T10:00:00+08:00", "2026-11-01", product_id="p2", pool="organic"),
            click("f1", "uf", "2026-11-01T11:00:00+08:00", "2026-11-01"),
            click("g1", "ug", "2026-11-01T11:00:00+08:00", "2026-11-01"),
            click("h1", "uh", "2026-11-02T11:00:00+08:00", "2026-11-02", campaign_id="ch"),
            click("o1", "uo", "2026-10-30T11:00:00+08:00", "2026-11-04"),  # late, for an order out of scope
            click("k1", "uk", "2026-11-01T09:00:00+08:00", "2026-11-03", pool="organic"),  # late: k's first
        ],
    )
    settings = {"window_days": 7, "lookback_days": 4}
    full = {d: attribute_orders(orders, traffic, d, **settings).cache() for d in days_}
    touch = lambda d: {  # noqa: E731
        r["order_id"]: (r["attributed_pool"], r["campaign_id"], r["touch_event_id"]) for r in full[d].collect()
    }
    # Hand-worked expectations of the full recompute (the reference the incremental one must equal).
    assert touch(days_[0]) == {
        "a": ("ad", "ca", "a1"), "b": ("organic", None, "b1"), "c": ("ad", "c1", "c2"),
        "d": ("ad", "c1", "d1"), "e": ("ad", "c1", "e1"), "f": ("ad", "c1", "f1"),
        "g": ("ad", "c1", "g1"), "j": ("direct", None, None), "k": ("direct", None, None),
        "old": ("direct", None, None),
    }
    assert touch(days_[4]) == {
        "a": ("organic", None, "a2"), "b": ("ad", "cb", "b2"), "c": ("ad", "c9", "c1"),
        "d": ("ad", "c1", "d1"), "e": ("organic", None, "e2"), "g": ("ad", "c1", "g1"),
        "h": ("ad", "ch", "h1"), "j": ("direct", None, None), "k": ("organic", None, "k1"),
    }
    assert {r["order_id"]: r["quantity"] for r in full[days_[4]].collect()}["j"] == 2  # the 14:00 version
    chained = full[days_[0]]
    for previous_day, day_ in zip(days_, days_[1:]):
        chained = attribute_orders_incremental(
            orders, traffic, chained, previous_day, day_, **settings
        ).localCheckpoint(eager=True)
        assert _same(chained, full[day_]), day_
    # across a gap: from the 2nd straight to the 5th
    skipped = attribute_orders_incremental(orders, traffic, full[days_[1]], days_[1], days_[4], **settings)
    assert _same(skipped, full[days_[4]])
