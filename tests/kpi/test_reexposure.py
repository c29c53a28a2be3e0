"""SPEC §9 lower-price re-exposure: which pools showed the buyer the same SPU cheaper after paying.

Every order is paid at t = 2026-12-01 10:00 (+08:00) for a unit price of 50.00 and has its own
user, so the events of one case never touch another. Run date D = 2026-12-10, window 7 days.
"""

from __future__ import annotations

from functools import reduce

import pytest
from pyspark.sql import functions as F

import assets.storage as storage_module
from assets.kpi.reexposure import (
    ORDER_REEXPOSURE_COLUMNS,
    ORDER_REEXPOSURE_SCHEMA,
    compute_order_reexposure,
    order_reexposure_changes,
)
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


# --------------------------------------------------------------------------------------------
# Incremental computation: four landing days, each day's snapshot from the previous one
# --------------------------------------------------------------------------------------------
# Window 2 days. Every order has its own user (SPU s1, unit price 50.00 unless said otherwise):
#   o_late     paid 12-01 10:00; ad event 12-02 (landed 12-02), organic event 12-02 12:00 landing
#              late on 12-05, organic event 12-03 11:00 (after the window end 12-03 10:00)
#   o_cut      paid 12-01 10:00; events 12-01 12:00 ad, 12-02 10:00 organic, 12-03 09:00 ad; a
#              return requested 12-02 08:00 lands 12-04 (binding), a cancelled one requested
#              12-01 11:00 lands 12-06 (binding, earlier)
#   o_nonbind  paid 12-01 10:00; ad event 12-02 09:00, organic event 12-03 08:00 landing late on
#              12-05; a return requested 12-03 10:00:01 (just after the window end) lands 12-04
#   o_edge     paid 12-01 10:00; organic event exactly at the window end 12-03 10:00; a return
#              requested exactly then lands 12-04 (binding: the event is not before it)
#   o_price    paid 12-01 10:00; organic event at 47.00; the order's unit price is 45.00 from 12-04
#   o_paidat   paid 12-02 10:00, from 12-05 paid 12-02 20:00; ad event 12-02 15:00, organic
#              event 12-04 19:00 (landed 12-04)
#   o_leave    paid 12-02 10:00; ad event 12-02 11:00; not in the 12-05 snapshot, back on 12-06
#   o_new      paid 12-05 09:00, in the snapshots from 12-05; organic event 12-05 10:00, ad event
#              12-06 10:00 (landed 12-06)
#   o_quiet    paid 12-02 10:00; only another user's and another SPU's events
#   o_old      paid 11-24 10:00; ad event 11-24 12:00; organic event 11-25 09:00 landing 10 days
#              late on 12-05; ad event 11-26 10:00:01 (after the window end) landing late on 12-06
DAYS = ["2026-12-03", "2026-12-04", "2026-12-05", "2026-12-06"]
WINDOW = 2
PRICE = "50.00"


def _snapshot_orders(as_of: str) -> list[dict]:
    def order(order_id, paid_at="2026-12-01 10:00", amount=PRICE):
        return dict(as_of=as_of, order_id=order_id, user="u_" + order_id[2:], amount=amount, paid_at=paid_at)

    day_index = DAYS.index(as_of)
    orders = [
        order("o_late"),
        order("o_cut"),
        order("o_nonbind"),
        order("o_edge"),
        order("o_price", amount=PRICE if day_index == 0 else "45.00"),
        order("o_paidat", paid_at="2026-12-02 10:00" if day_index < 2 else "2026-12-02 20:00"),
        order("o_quiet", paid_at="2026-12-02 10:00"),
        order("o_old", paid_at="2026-11-24 10:00"),
    ]
    if day_index != 2:
        orders.append(order("o_leave", paid_at="2026-12-02 10:00"))
    if day_index >= 2:
        orders.append(order("o_new", paid_at="2026-12-05 09:00"))
    return orders


def _event(event_id, user, event_time, pool, price="40.00", **extra) -> dict:
    return dict(event_id=event_id, user=user, event_time=event_time, pool=pool, price=price, **extra)


def _request(return_id, order_id, requested_at, landed, status="requested") -> dict:
    return dict(return_id=return_id, order_id=order_id, status=status, requested_at=requested_at, dt=landed)


@pytest.fixture(scope="module")
def days_inputs(spark):
    attribution = b.order_attribution(spark, [o for d in DAYS for o in _snapshot_orders(d)])
    traffic = b.traffic(
        spark,
        [
            _event("L1", "u_late", "2026-12-02 10:00", "ad"),
            _event("L2", "u_late", "2026-12-02 12:00", "organic", "45.00", dt="2026-12-05"),
            _event("L3", "u_late", "2026-12-03 11:00", "organic"),
            _event("C1", "u_cut", "2026-12-01 12:00", "ad"),
            _event("C2", "u_cut", "2026-12-02 10:00", "organic"),
            _event("C3", "u_cut", "2026-12-03 09:00", "ad", "45.00"),
            _event("N1", "u_nonbind", "2026-12-02 09:00", "ad"),
            _event("N2", "u_nonbind", "2026-12-03 08:00", "organic", dt="2026-12-05"),
            _event("E1", "u_edge", "2026-12-03 10:00", "organic"),
            _event("P1", "u_price", "2026-12-02 10:00", "organic", "47.00"),
            _event("A1", "u_paidat", "2026-12-02 15:00", "ad"),
            _event("A2", "u_paidat", "2026-12-04 19:00", "organic"),
            _event("V1", "u_leave", "2026-12-02 11:00", "ad"),
            _event("W1", "u_new", "2026-12-05 10:00", "organic"),
            _event("W2", "u_new", "2026-12-06 10:00", "ad", "45.00", type="click"),
            _event("Q1", "u_other", "2026-12-02 11:00", "ad"),
            _event("Q2", "u_quiet", "2026-12-02 11:00", "ad", spu="s2"),
            _event("Q3", "u_quiet", "2026-12-06 11:00", "ad", spu="s2"),
            _event("O1", "u_old", "2026-11-24 12:00", "ad"),
            _event("O2", "u_old", "2026-11-25 09:00", "organic", dt="2026-12-05"),
            _event("O3", "u_old", "2026-11-26 10:00:01", "ad", dt="2026-12-06"),
        ],
    )
    silver_returns = b.returns(
        spark,
        [
            _request("x1", "o_cut", "2026-12-02 08:00", "2026-12-04"),
            _request("x2", "o_cut", "2026-12-01 11:00", "2026-12-06", status="cancelled"),
            _request("x3", "o_nonbind", "2026-12-03 10:00:01", "2026-12-04"),
            _request("x4", "o_edge", "2026-12-03 10:00", "2026-12-04"),
        ],
    )
    return attribution, silver_returns, traffic


def _full(days_inputs, day: str):
    attribution, silver_returns, traffic = days_inputs
    return compute_order_reexposure(
        attribution, silver_returns, traffic, b.day(day), reexposure_window_days=WINDOW
    )


def changed_keys(attribution, previous: str, day: str):
    """The orders whose attribution row differs between the two snapshots or is in one only (what
    the attribution's MERGE for D changed), computed here by comparing whole snapshots."""

    def rows(as_of):
        return attribution.filter(F.col("as_of") == F.lit(b.day(as_of))).drop("as_of")

    before, now = rows(previous), rows(day)
    return now.exceptAll(before).unionByName(before.exceptAll(now)).select("order_id").distinct()


def _incremental(days_inputs, stored, previous: str, day: str, keys=None):
    """The snapshot as of ``day``: the stored one as of ``previous`` with the changes applied (what
    the MERGE of SnapshotTable.write_changes leaves), and the changes."""
    attribution, silver_returns, traffic = days_inputs
    keys = changed_keys(attribution, previous, day) if keys is None else keys
    upserts, removed = order_reexposure_changes(
        attribution,
        keys,
        stored,
        silver_returns,
        traffic,
        b.day(day),
        b.day(previous),
        reexposure_window_days=WINDOW,
    )
    kept = (
        stored.filter(F.col("as_of") == F.lit(b.day(previous)))
        .join(removed, on="order_id", how="left_anti")
        .join(upserts.select("order_id"), on="order_id", how="left_anti")
        .withColumn("as_of", F.lit(b.day(day)))
    )
    return kept.unionByName(upserts), upserts, removed


@pytest.fixture(scope="module")
def full_snapshots(days_inputs):
    """The reference result of every day, materialized (as the stored table would hold it)."""
    return {day: _full(days_inputs, day).localCheckpoint() for day in DAYS}


def _stored(spark, frames):
    return reduce(lambda a, c: a.unionByName(c), frames, spark.createDataFrame([], ORDER_REEXPOSURE_SCHEMA))


def assert_same_rows(got, expected):
    assert got.dtypes == expected.dtypes
    assert got.count() == expected.count()
    assert got.exceptAll(expected).count() == 0
    assert expected.exceptAll(got).count() == 0


EXPECTED = {  # day -> order_id -> (ad_exposures, organic_exposures, reexposure), by hand
    "2026-12-03": {
        "o_late": (1, 0, "ad"),  # L3 is after the window end
        "o_cut": (2, 1, "both"),  # no return known yet
        "o_nonbind": (1, 0, "ad"),
        "o_edge": (0, 1, "organic"),  # window end is inclusive
        "o_price": (0, 1, "organic"),  # 47.00 < 50.00
        "o_paidat": (1, 0, "ad"),
        "o_leave": (1, 0, "ad"),
        "o_quiet": (0, 0, "none"),
        "o_old": (1, 0, "ad"),
    },
    "2026-12-04": {
        "o_late": (1, 0, "ad"),
        "o_cut": (1, 0, "ad"),  # the request at 12-02 08:00 cuts C2 and C3
        "o_nonbind": (1, 0, "ad"),  # request after the window end: nothing cut
        "o_edge": (0, 0, "none"),  # request at the window end: E1 is not before it
        "o_price": (0, 0, "none"),  # 47.00 is not below 45.00
        "o_paidat": (1, 0, "ad"),  # A2 (landed today) is after its window end 12-04 10:00
        "o_leave": (1, 0, "ad"),
        "o_quiet": (0, 0, "none"),
        "o_old": (1, 0, "ad"),
    },
    "2026-12-05": {
        "o_late": (1, 1, "both"),  # L2 landed late
        "o_cut": (1, 0, "ad"),
        "o_nonbind": (1, 1, "both"),  # N2 landed late, before the (non-binding) request
        "o_edge": (0, 0, "none"),
        "o_price": (0, 0, "none"),
        "o_paidat": (0, 1, "organic"),  # paid 12-02 20:00: A1 is before it, A2 inside the window
        "o_new": (0, 1, "organic"),
        "o_quiet": (0, 0, "none"),
        "o_old": (1, 1, "both"),  # O2 landed 10 days late
    },
    "2026-12-06": {
        "o_late": (1, 1, "both"),
        "o_cut": (0, 0, "none"),  # the cancelled request at 12-01 11:00 cuts C1 too
        "o_nonbind": (1, 1, "both"),
        "o_edge": (0, 0, "none"),
        "o_price": (0, 0, "none"),
        "o_paidat": (0, 1, "organic"),
        "o_leave": (1, 0, "ad"),  # back in the snapshot
        "o_new": (1, 1, "both"),
        "o_quiet": (0, 0, "none"),
        "o_old": (1, 1, "both"),  # O3 (landed today) is after the window end
    },
}


def _counts(rows) -> dict:
    return {r["order_id"]: (r["ad_exposures"], r["organic_exposures"], r["reexposure"]) for r in rows}


@pytest.mark.parametrize("day", DAYS)
def test_full_by_hand(full_snapshots, day):
    assert _counts(full_snapshots[day].collect()) == EXPECTED[day]


def test_incremental_day_by_day_from_its_own_results(days_inputs, full_snapshots):
    """The asset's loop: the first day from scratch, each next one from the day before as the
    changes left it."""
    snapshot = full_snapshots[DAYS[0]]
    for previous, day in zip(DAYS, DAYS[1:], strict=False):
        snapshot, upserts, removed = _incremental(days_inputs, snapshot, previous, day)
        snapshot = snapshot.localCheckpoint()
        assert_same_rows(snapshot, full_snapshots[day])
        assert _counts(snapshot.collect()) == EXPECTED[day]
        assert upserts.groupBy("order_id").count().filter("count > 1").count() == 0  # one row per key


@pytest.mark.parametrize("day", DAYS[1:])
def test_incremental_equals_full_from_the_previous_full(spark, days_inputs, full_snapshots, day):
    previous = DAYS[DAYS.index(day) - 1]
    stored = _stored(spark, list(full_snapshots.values()))  # D itself and later days stored too
    snapshot, upserts, _ = _incremental(days_inputs, stored, previous, day)
    assert_same_rows(snapshot, full_snapshots[day])
    assert all(r["as_of"] == b.day(day) for r in upserts.collect())


def test_only_what_changed_is_written(days_inputs, full_snapshots):
    """12-05 from 12-04: the upserts are the changed and new orders, the orders with a return
    landed since, and the orders whose counts grew from the events landed since; o_leave left."""
    _, upserts, removed = _incremental(days_inputs, full_snapshots[DAYS[1]], DAYS[1], DAYS[2])
    # o_paidat changed, o_new is new; o_late, o_nonbind and o_old get the late events L2, N2, O2
    assert sorted(r["order_id"] for r in upserts.collect()) == [
        "o_late",
        "o_new",
        "o_nonbind",
        "o_old",
        "o_paidat",
    ]
    assert [r["order_id"] for r in removed.collect()] == ["o_leave"]
    # 12-06 from 12-05: x2 landed (o_cut's cut moves), o_leave is back, W2/O3/Q3 landed
    _, upserts, removed = _incremental(days_inputs, full_snapshots[DAYS[2]], DAYS[2], DAYS[3])
    assert sorted(r["order_id"] for r in upserts.collect()) == ["o_cut", "o_leave", "o_new"]
    assert removed.count() == 0


def test_incremental_without_broadcast(spark, days_inputs, full_snapshots, monkeypatch):
    """Change sets too large to broadcast: the plain joins give the same rows."""
    monkeypatch.setattr(storage_module, "BROADCAST_MAX_ROWS", -1)
    for previous, day in zip(DAYS, DAYS[1:], strict=False):
        snapshot, _, _ = _incremental(days_inputs, full_snapshots[previous], previous, day)
        assert_same_rows(snapshot, full_snapshots[day])


def test_incremental_over_a_gap(days_inputs, full_snapshots):
    """12-06 from 12-03: the changes are everything landed in (12-03, 12-06]."""
    snapshot, _, _ = _incremental(days_inputs, full_snapshots[DAYS[0]], DAYS[0], DAYS[3])
    assert_same_rows(snapshot, full_snapshots[DAYS[3]])


def test_the_scope_start_drops_older_payments(days_inputs, full_snapshots):
    """Rows paid before the scope start are neither carried nor written (they leave as whole
    partitions): o_old (paid 11-24) gets no row although O2 landed for it."""
    attribution, silver_returns, traffic = days_inputs
    upserts, _ = order_reexposure_changes(
        attribution,
        changed_keys(attribution, DAYS[1], DAYS[2]),
        full_snapshots[DAYS[1]],
        silver_returns,
        traffic,
        b.day(DAYS[2]),
        b.day(DAYS[1]),
        reexposure_window_days=WINDOW,
        scope_start=b.day("2026-11-25"),
    )
    assert "o_old" not in {r["order_id"] for r in upserts.collect()}


def test_carried_orders_keep_their_stored_counts(spark, days_inputs, full_snapshots):
    """Which orders are carried, seen through a doctored stored snapshot of 12-04: carried orders
    add the events landed since to the stored counts (whatever they are), the others are
    recomputed, and an order without a change is not read at all."""
    doctored = full_snapshots[DAYS[1]].withColumn(
        "ad_exposures",
        F.when(
            F.col("order_id").isin("o_quiet", "o_late", "o_cut", "o_edge", "o_price", "o_paidat", "o_old"), 7
        )
        .otherwise(F.col("ad_exposures"))
        .cast("long"),
    )
    # stored rows are consistent: the class follows the (doctored) counts
    ad, organic = F.col("ad_exposures") > 0, F.col("organic_exposures") > 0
    doctored = doctored.withColumn(
        "reexposure",
        F.when(ad & organic, "both").when(ad, "ad").when(organic, "organic").otherwise("none"),
    )
    snapshot, _, _ = _incremental(days_inputs, _stored(spark, [doctored]), DAYS[1], DAYS[2])
    got = _counts(snapshot.collect())
    assert got["o_quiet"] == (7, 0, "ad")  # nothing new
    assert got["o_late"] == (7, 1, "both")  # carried + L2 landed today
    assert got["o_cut"] == (7, 0, "ad")  # no return landed since
    assert got["o_edge"] == (7, 0, "ad")
    assert got["o_price"] == (7, 0, "ad")  # its price changed on 12-04, not since
    assert got["o_paidat"] == (0, 1, "organic")  # paid_at changed: recomputed
    assert got["o_new"] == (0, 1, "organic")  # new: recomputed
    assert got["o_old"] == (7, 1, "both")  # carried + O2, landed today 10 days after it happened
    # a changed order whose fields are those its stored counts were computed with is carried
    keys = spark.createDataFrame([("o_quiet",)], "order_id string")
    snapshot, upserts, _ = _incremental(days_inputs, _stored(spark, [doctored]), DAYS[1], DAYS[2], keys=keys)
    assert _counts(upserts.filter(F.col("order_id") == "o_quiet").collect())["o_quiet"] == (7, 0, "ad")
