"""SPEC §9 lower-price re-exposure: which pools showed the buyer the same SPU cheaper after paying.

Every order is paid at t = 2026-12-01 10:00 (+08:00) for a unit price of 50.00 and has its own
user, so the events of one case never touch another. Run date D = 2026-12-10, window 7 days.
"""

from __future__ import annotations

import pytest

from assets.kpi.reexposure import ORDER_REEXPOSURE_COLUMNS, compute_order_reexposure
from tests.kpi import builders as b

D = "2026-12-10"
T = "2026-12-01 10:00"


def _order(order_id: str, user: str, **extra) -> dict:
    return dict(
        as_of=D,
        order_id=order_id,
        user=user,
        spu="s1",
        product="p1",
        amount="50.00",
        paid_at=T,
        pool="organic",
        **extra,
    )


@pytest.fixture(scope="module")
def reexposure(spark):
    attribution = b.order_attribution(
        spark,
        [
            _order("o_none", "u_none"),
            _order("o_ad", "u_ad"),
            _order("o_organic", "u_organic"),
            _order("o_both", "u_both"),
            _order("o_return", "u_return"),
            _order("o_late_return", "u_late"),
            _order("o_old_snapshot", "u_old") | {"as_of": "2026-12-09"},
        ],
    )
    events = b.traffic(
        spark,
        [
            # o_none: nothing qualifies
            dict(
                event_id="n1", user="u_none", event_time="2026-12-01 12:00", pool="ad", price="50.00"
            ),  # not cheaper
            dict(
                event_id="n2", user="u_none", event_time="2026-12-01 09:00", pool="ad", price="40.00"
            ),  # before t
            dict(
                event_id="n3", user="u_none", event_time=T, pool="organic", price="40.00"
            ),  # at t: not after
            dict(
                event_id="n4", user="u_none", event_time="2026-12-08 10:00:01", pool="ad", price="40.00"
            ),  # t + 7 days + 1 s
            dict(
                event_id="n5", user="u_other", event_time="2026-12-02 10:00", pool="ad", price="40.00"
            ),  # user
            dict(
                event_id="n6",
                user="u_none",
                spu="s2",
                event_time="2026-12-02 10:00",
                pool="ad",
                price="40.00",
            ),  # another SPU
            dict(
                event_id="n7",
                user="u_none",
                event_time="2026-12-02 10:00",
                pool="organic",
                price="40.00",
                dt="2026-12-11",
            ),  # lands after D
            # o_ad: another SKU of the same SPU, cheaper, an hour after paying
            dict(
                event_id="a1",
                user="u_ad",
                product="p2",
                event_time="2026-12-01 11:00",
                pool="ad",
                price="49.99",
            ),
            # o_organic: a click exactly at t + 7 days (window end is inclusive)
            dict(
                event_id="g1",
                user="u_organic",
                event_time="2026-12-08 10:00",
                pool="organic",
                type="click",
                price="45.00",
            ),
            # o_both: two ad events and one organic
            dict(event_id="b1", user="u_both", event_time="2026-12-02 10:00", pool="ad", price="45.00"),
            dict(
                event_id="b2",
                user="u_both",
                event_time="2026-12-03 10:00",
                pool="ad",
                type="click",
                price="45.00",
            ),
            dict(event_id="b3", user="u_both", event_time="2026-12-04 10:00", pool="organic", price="48.00"),
            # o_return: first return request (a cancelled one) at 12-03 10:00
            dict(event_id="r1", user="u_return", event_time="2026-12-02 10:00", pool="ad", price="45.00"),
            dict(
                event_id="r2", user="u_return", event_time="2026-12-03 10:00", pool="organic", price="45.00"
            ),  # at the request: not before it
            dict(
                event_id="r3", user="u_return", event_time="2026-12-04 10:00", pool="organic", price="45.00"
            ),  # after the request
            # o_late_return: the return that would cut the window lands after D
            dict(event_id="l1", user="u_late", event_time="2026-12-03 10:00", pool="organic", price="45.00"),
        ],
    )
    silver_returns = b.returns(
        spark,
        [
            dict(
                return_id="x1",
                order_id="o_return",
                status="cancelled",
                requested_at="2026-12-03 10:00",
                dt="2026-12-03",
            ),
            dict(
                return_id="x2",
                order_id="o_return",
                status="refunded",
                requested_at="2026-12-05 10:00",
                refunded_at="2026-12-06 10:00",
                dt="2026-12-06",
            ),
            dict(
                return_id="x3",
                order_id="o_late_return",
                status="requested",
                requested_at="2026-12-02 10:00",
                dt="2026-12-11",
            ),
        ],
    )
    frame = compute_order_reexposure(attribution, silver_returns, events, b.day(D), reexposure_window_days=7)
    return frame.columns, b.by_key(frame.collect(), "order_id")


def test_columns(reexposure):
    columns, _ = reexposure
    assert tuple(columns) == ORDER_REEXPOSURE_COLUMNS


def test_one_row_per_order_of_the_snapshot(reexposure):
    _, rows = reexposure
    assert set(rows) == {"o_none", "o_ad", "o_organic", "o_both", "o_return", "o_late_return"}
    assert all(row["as_of"] == b.day(D) for row in rows.values())


@pytest.mark.parametrize(
    "order_id, expected, ad_exposures, organic_exposures",
    [
        ("o_none", "none", 0, 0),  # same price, before/at t, after 7 days, other user/SPU, landed late
        ("o_ad", "ad", 1, 0),  # same SPU, another SKU counts
        ("o_organic", "organic", 0, 1),  # t + 7 days exactly is inside
        ("o_both", "both", 2, 1),
        ("o_return", "ad", 1, 0),  # organic exposures at/after the first request (any status) don't count
        ("o_late_return", "organic", 0, 1),  # as of D the order has no return yet
    ],
)
def test_classification(reexposure, order_id, expected, ad_exposures, organic_exposures):
    _, rows = reexposure
    row = rows[order_id]
    assert row["reexposure"] == expected
    assert (row["ad_exposures"], row["organic_exposures"]) == (ad_exposures, organic_exposures)


def test_first_requested_at(reexposure):
    _, rows = reexposure
    assert rows["o_return"]["first_requested_at"] is not None
    assert rows["o_none"]["first_requested_at"] is None
    assert rows["o_late_return"]["first_requested_at"] is None
