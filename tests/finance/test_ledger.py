"""SPEC §6 refund ledger: eligibility, proration, caps, reversals, run-order independence."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from assets.finance import settlement_files as sf
from assets.finance.allocation import allocation_rows
from assets.finance.attribution import attribute_orders
from assets.finance.ledger import LedgerDriftError, ledger_entries_for_day, run_ledger_through
from assets.finance.schemas import LEDGER_SCHEMA
from assets.finance.settlement_files import publish_settlement_day
from pipelines.config import OnetrackConfig
from tests.finance.factory import ad_spend_df, money, orders_df, returns_df, traffic_df, ts


def ad_order(order_id, campaign, paid_at, unit_price="100.00", subsidy="0.00", dt_="2026-11-01", pool="ad"):
    """An order plus the click (one hour before paying) that attributes it to ``campaign``."""
    user = f"u-{order_id}"
    order = {
        "order_id": order_id,
        "user_id": user,
        "unit_price": unit_price,
        "platform_subsidy": subsidy,
        "voucher_pool": None if subsidy == "0.00" else "ad",
        "paid_at": paid_at,
        "dt": dt_,
    }
    click_time = (dt.datetime.fromisoformat(paid_at) - dt.timedelta(hours=1)).isoformat()
    click = {
        "event_id": f"e-{order_id}",
        "user_id": user,
        "pool": pool,
        "event_time": click_time,
        "dt": dt_,
        "campaign_id": campaign if pool == "ad" else None,
    }
    return order, click


def spend(campaign, stat_date, amount, dt_=None):
    return {"stat_date": stat_date, "campaign_id": campaign, "spend": amount, "dt": dt_ or stat_date}


def ret(return_id, order_id, refunded_at, amount, dt_, **kw):
    return {
        "return_id": return_id,
        "order_id": order_id,
        "refunded_at": refunded_at,
        "refund_amount": amount,
        "dt": dt_,
        **kw,
    }


def ledger_rows(df):
    """(settlement_date, entry_type, order_id, return_id) -> (allocated_ad_fee, ad_fee_refund)"""
    return {
        (r["settlement_date"].isoformat(), r["entry_type"], r["order_id"], r["return_id"]): (
            r["allocated_ad_fee"],
            r["ad_fee_refund"],
        )
        for r in df.collect()
    }


def prior_entry(spark, settlement_date, order_id, return_id, fee, refund, entry_type="refund"):
    row = (
        dt.date.fromisoformat(settlement_date),
        entry_type,
        "m1",
        "c1",
        order_id,
        return_id,
        ts("2026-10-20T12:00:00+08:00"),
        ts("2026-11-05T12:00:00+08:00"),
        money("100.00"),
        money("100.00"),
        money("10.00"),
        money(fee),
        money(refund),
    )
    return spark.createDataFrame([row], LEDGER_SCHEMA)


def test_ledger_entries_for_one_day(spark):
    D = dt.date(2026, 11, 10)
    cfg = OnetrackConfig(partition_start="2026-11-01")
    pairs = [
        # W: paid 2026-10-11 10:00; window edge: refunded exactly paid_at + 30 days -> in, +1 s -> out
        ad_order("W", "cw", "2026-10-11T10:00:00+08:00", dt_="2026-10-11"),
        # T: paid 2026-11-03T16:30Z = 2026-11-04 00:30 Shanghai -> campaign-day 11-04 of ct
        ad_order("T", "ct", "2026-11-03T16:30:00+00:00", dt_="2026-11-04"),
        # P: several returns on one date, with an earlier refund in the ledger
        ad_order("P", "cp", "2026-10-20T12:00:00+08:00", dt_="2026-10-20"),
        # H: rounding half-up
        ad_order("H", "ch", "2026-11-05T12:00:00+08:00", dt_="2026-11-05"),
        # F: refund above the buyer's cash -> the whole fee; subsidy 20.00 -> pay 80.00
        ad_order("F", "cf", "2026-11-05T12:00:00+08:00", subsidy="20.00", dt_="2026-11-05"),
        # G: organic-attributed -> never eligible
        ad_order("G", None, "2026-11-05T12:00:00+08:00", dt_="2026-11-05", pool="organic"),
    ]
    orders = orders_df(spark, [o for o, _ in pairs])
    traffic = traffic_df(spark, [c for _, c in pairs])
    ad_spend = ad_spend_df(
        spark,
        [
            spend("cw", "2026-10-11", "30.00"),
            spend("ct", "2026-11-03", "3.00"),
            spend("ct", "2026-11-04", "7.00"),
            spend("cp", "2026-10-20", "10.00"),
            spend("ch", "2026-11-05", "0.05"),
            spend("cf", "2026-11-05", "12.34"),
        ],
    )
    returns = returns_df(
        spark,
        [
            # W (fee 30.00, pay 100.00): refund 50.00 -> 30.00 x 0.5 = 15.00
            ret("w-in", "W", "2026-11-10T10:00:00+08:00", "50.00", "2026-11-10"),
            ret("w-out", "W", "2026-11-10T10:00:01+08:00", "50.00", "2026-11-10"),
            # T (fee 7.00 from 11-04, not 3.00 from 11-03): full refund -> 7.00
            ret("t1", "T", "2026-11-06T10:00:00+08:00", "100.00", "2026-11-06"),
            # P (fee 10.00, pay 100.00), prior refund 2.00 -> cap 8.00; settled in
            # (refunded_at, return_id) order: pc (x = 10 x 10/100 = 1.00), pa (6.00), pb (6.00)
            #   pc = min(1.00, 8.00) = 1.00; pa = min(6.00, 7.00) = 6.00; pb = min(6.00, 1.00) = 1.00
            ret("pb", "P", "2026-11-09T09:00:00+08:00", "60.00", "2026-11-10"),
            ret("pa", "P", "2026-11-09T09:00:00+08:00", "60.00", "2026-11-10"),
            ret("pc", "P", "2026-11-09T08:00:00+08:00", "10.00", "2026-11-10"),
            # H (fee 0.05): refund 50 of 100 -> 0.025 -> half-up 0.03
            ret("h1", "H", "2026-11-06T10:00:00+08:00", "50.00", "2026-11-06"),
            # F (fee 12.34, pay 80.00): refund 90.00 >= pay -> min(1, 90/80) = 1 -> 12.34
            ret("f1", "F", "2026-11-06T10:00:00+08:00", "90.00", "2026-11-06"),
            # not eligible: refund_only, not yet refunded, organic order, landed after D
            ret("f2", "F", "2026-11-06T11:00:00+08:00", "1.00", "2026-11-06", return_type="refund_only"),
            ret("f3", "F", None, "1.00", "2026-11-06", status="approved"),
            ret("g1", "G", "2026-11-06T10:00:00+08:00", "100.00", "2026-11-06"),
            ret("h2", "H", "2026-11-10T10:00:00+08:00", "50.00", "2026-11-11"),
        ],
    )
    prior = prior_entry(spark, "2026-11-05", "P", "p0", "10.00", "2.00")
    entries = ledger_entries_for_day(
        D, orders=orders, returns=returns, traffic=traffic, ad_spend=ad_spend, prior_ledger=prior, cfg=cfg
    )
    assert [(f.name, f.dataType) for f in entries.schema] == [(f.name, f.dataType) for f in LEDGER_SCHEMA]
    assert ledger_rows(entries) == {
        ("2026-11-10", "refund", "W", "w-in"): (Decimal("30.00"), Decimal("15.00")),
        ("2026-11-10", "refund", "T", "t1"): (Decimal("7.00"), Decimal("7.00")),
        ("2026-11-10", "refund", "P", "pc"): (Decimal("10.00"), Decimal("1.00")),
        ("2026-11-10", "refund", "P", "pa"): (Decimal("10.00"), Decimal("6.00")),
        ("2026-11-10", "refund", "P", "pb"): (Decimal("10.00"), Decimal("1.00")),
        ("2026-11-10", "refund", "H", "h1"): (Decimal("0.05"), Decimal("0.03")),
        ("2026-11-10", "refund", "F", "f1"): (Decimal("12.34"), Decimal("12.34")),
    }
    row = entries.filter(F.col("return_id") == "f1").first()
    assert (
        row["merchant_id"],
        row["campaign_id"],
        row["order_amount"],
        row["pay_amount"],
        row["refund_amount"],
    ) == ("m1", "cf", Decimal("100.00"), Decimal("80.00"), Decimal("90.00"))

    # The same day with the ad orders given as a function (how the stored snapshots are read): it
    # is asked only for the orders of refunded returns of an eligible type. T's one return here is
    # only approved, so T is not asked for (though it is an ad order) and has no entry.
    ad_orders, _ = allocation_rows(
        attribute_orders(
            orders,
            traffic,
            D,
            window_days=cfg.attribution_window_days,
            lookback_days=cfg.ledger_lookback_days,
        ),
        ad_spend,
        D,
        passthrough=("merchant_id", "paid_at", "pay_amount"),
    )
    assert "T" in {r["order_id"] for r in ad_orders.collect()}
    asked = []

    def lookup(order_ids):
        asked.append({r["order_id"] for r in order_ids.collect()})
        return ad_orders.join(order_ids, on="order_id", how="left_semi")

    t_approved = returns.filter(F.col("order_id") != "T").unionByName(
        returns_df(spark, [ret("t2", "T", None, "100.00", "2026-11-06", status="approved")])
    )
    by_lookup = ledger_entries_for_day(
        D,
        orders=orders,
        returns=t_approved,
        traffic=traffic,
        ad_spend=ad_spend,
        prior_ledger=prior,
        cfg=cfg,
        ad_orders=lookup,
    )
    assert ledger_rows(by_lookup) == {k: v for k, v in ledger_rows(entries).items() if k[2] != "T"}
    assert asked == [{"W", "P", "H", "F", "G"}]

    # A 31-day refund window lets w-out in as well (config).
    wide = OnetrackConfig(partition_start="2026-11-01", refund_window_days=31)
    entries31 = ledger_entries_for_day(
        D,
        orders=orders,
        returns=returns.filter(F.col("order_id") == "W"),
        traffic=traffic,
        ad_spend=ad_spend,
        prior_ledger=prior,
        cfg=wide,
    )
    # w-in 15.00 then w-out min(15.00, 30.00 - 15.00) = 15.00
    assert ledger_rows(entries31) == {
        ("2026-11-10", "refund", "W", "w-in"): (Decimal("30.00"), Decimal("15.00")),
        ("2026-11-10", "refund", "W", "w-out"): (Decimal("30.00"), Decimal("15.00")),
    }


def test_reversals_read_settled_returns_from_every_landing_date(spark):
    """The ledger reads the returns landed within the lookback scope, but a settled return is
    looked up in every landing date, so its reversal is found however old it is, and a stale
    version landing late does not reverse it (its latest version still wins)."""
    D = dt.date(2026, 11, 10)  # scope: paid from 2026-09-11, so returns landed from 2026-09-10
    cfg = OnetrackConfig(partition_start="2026-11-01")
    order, click = ad_order("X", "cx", "2026-11-05T12:00:00+08:00", dt_="2026-11-05")
    prior = prior_entry(spark, "2026-08-20", "OLD", "old1", "10.00", "4.00").unionByName(
        prior_entry(spark, "2026-08-20", "OLD", "old2", "10.00", "3.00")
    )
    returns = returns_df(
        spark,
        [
            # old1: settled 08-20, cancelled on 09-01 (both versions before the scope's landing dates)
            ret("old1", "OLD", "2026-08-20T10:00:00+08:00", "40.00", "2026-08-20"),
            ret(
                "old1",
                "OLD",
                None,
                "40.00",
                "2026-09-01",
                status="cancelled",
                updated_at="2026-09-01T10:00:00+08:00",
            ),
            # old2: settled 08-20; a stale version stamped 08-15 lands late, inside the scope's dates
            ret("old2", "OLD", "2026-08-20T10:00:00+08:00", "30.00", "2026-08-20"),
            ret(
                "old2",
                "OLD",
                None,
                "30.00",
                "2026-09-15",
                status="requested",
                updated_at="2026-08-15T10:00:00+08:00",
            ),
        ],
    )
    entries = ledger_entries_for_day(
        D,
        orders=orders_df(spark, [order]),
        returns=returns,
        traffic=traffic_df(spark, [click]),
        ad_spend=ad_spend_df(spark, [spend("cx", "2026-11-05", "1.00")]),
        prior_ledger=prior,
        cfg=cfg,
    )
    assert ledger_rows(entries) == {
        ("2026-11-10", "reversal", "OLD", "old1"): (Decimal("10.00"), Decimal("-4.00"))
    }


# --- the orchestrator: four landing days, data arriving late, reversals, restated spend ---------

# The first settlement date sees everything landed by then (here: orders on 11-01, returns on 11-02).
START = "2026-11-02"
DAYS = [dt.date(2026, 11, d) for d in (2, 3, 4)]


def scenario(spark):
    pairs = [
        # A: 100.00, subsidy 20.00 -> pay 80.00; B: 100.00; both on c1 11-01; C: 50.00 alone on c2
        ad_order("A", "c1", "2026-11-01T10:00:00+08:00", subsidy="20.00"),
        ad_order("B", "c1", "2026-11-01T11:00:00+08:00"),
        ad_order("C", "c2", "2026-11-01T12:00:00+08:00", unit_price="50.00"),
        ad_order("O", None, "2026-11-01T12:00:00+08:00", pool="organic"),
    ]
    silver = {
        "orders": orders_df(spark, [o for o, _ in pairs]),
        "traffic": traffic_df(spark, [c for _, c in pairs]),
        "ad_spend": ad_spend_df(
            spark,
            [
                # c1 11-01: 100.00 -> fees A, B 50.00 each; restated on dt 11-03 to 120.00 -> 60.00 each
                spend("c1", "2026-11-01", "100.00"),
                spend("c1", "2026-11-01", "120.00", dt_="2026-11-03"),
                spend("c2", "2026-11-01", "9.99"),
            ],
        ),
        "returns": returns_df(
            spark,
            [
                # 11-02, A (fee 50.00, pay 80.00): r1 x = 50 x 40/80 = 25.00 -> 25.00;
                #   r2 x = 50 x 60/80 = 37.50 -> min(37.50, 50.00 - 25.00) = 25.00 (cap reached)
                ret("r1", "A", "2026-11-02T10:00:00+08:00", "40.00", "2026-11-02"),
                ret("r2", "A", "2026-11-02T11:00:00+08:00", "60.00", "2026-11-02"),
                # 11-02, B (fee 50.00, pay 100.00): r3 x = 50 x 30/100 = 15.00
                ret("r3", "B", "2026-11-02T09:00:00+08:00", "30.00", "2026-11-02"),
                # 11-03: r3 cancelled -> reversal -15.00 first; then r4 (fee now 60.00):
                #   remaining = 60.00 - (15.00 - 15.00) = 60.00, x = 60 x 100/100 -> 60.00
                ret(
                    "r3",
                    "B",
                    None,
                    "30.00",
                    "2026-11-03",
                    status="cancelled",
                    updated_at="2026-11-03T08:00:00+08:00",
                ),
                ret("r4", "B", "2026-11-03T10:00:00+08:00", "100.00", "2026-11-03"),
                # 11-04: r3 refunded again -> nothing (settled at most once, reversed at most once)
                ret(
                    "r3",
                    "B",
                    "2026-11-02T09:00:00+08:00",
                    "30.00",
                    "2026-11-04",
                    updated_at="2026-11-04T08:00:00+08:00",
                ),
                # 11-04: r5 refunded on 11-02 but landed only on 11-04 -> settled 11-04, fee 9.99
                ret("r5", "C", "2026-11-02T08:00:00+08:00", "50.00", "2026-11-04"),
                # r8 of A: approved on 11-03, refunded on 11-04: x = 60 x 10/80 = 7.50,
                #   remaining = 60.00 - 50.00 = 10.00 -> 7.50
                ret("r8", "A", None, "10.00", "2026-11-03", status="approved"),
                ret("r8", "A", "2026-11-04T09:00:00+08:00", "10.00", "2026-11-04"),
                # never eligible: organic order; refund_only
                ret("r6", "O", "2026-11-02T09:00:00+08:00", "10.00", "2026-11-02"),
                ret("r7", "A", "2026-11-03T09:00:00+08:00", "10.00", "2026-11-03", return_type="refund_only"),
            ],
        ),
    }
    return silver


EXPECTED = {
    ("2026-11-02", "refund", "A", "r1"): (Decimal("50.00"), Decimal("25.00")),
    ("2026-11-02", "refund", "A", "r2"): (Decimal("50.00"), Decimal("25.00")),
    ("2026-11-02", "refund", "B", "r3"): (Decimal("50.00"), Decimal("15.00")),
    # the reversal repeats the refund row (fee 50.00 as settled), negated
    ("2026-11-03", "reversal", "B", "r3"): (Decimal("50.00"), Decimal("-15.00")),
    ("2026-11-03", "refund", "B", "r4"): (Decimal("60.00"), Decimal("60.00")),
    ("2026-11-04", "refund", "A", "r8"): (Decimal("60.00"), Decimal("7.50")),
    ("2026-11-04", "refund", "C", "r5"): (Decimal("9.99"), Decimal("9.99")),
}


def _as_landed(silver, day):
    return {name: df.filter(F.col("dt") <= F.lit(day)) for name, df in silver.items()}


def _ledger(spark, cfg):
    return spark.read.format("delta").load(cfg.table_path("finance", "ad_fee_refund_ledger"))


def _days(spark, cfg):
    rows = spark.read.format("delta").load(cfg.table_path("finance", "ledger_days")).collect()
    return {r["settlement_date"].isoformat(): r["entries"] for r in rows}


SETTLED_1103 = (
    "settlement_date,entry_type,merchant_id,campaign_id,order_id,return_id,paid_at,refunded_at,"
    "order_amount,pay_amount,refund_amount,allocated_ad_fee,ad_fee_refund\n"
    # the reversal repeats r3's refund row (refunded_at, fee 50.00 as settled on 11-02), negated
    "2026-11-03,reversal,m1,c1,B,r3,2026-11-01T11:00:00+08:00,2026-11-02T09:00:00+08:00,"
    "100.00,100.00,30.00,50.00,-15.00\n"
    "2026-11-03,refund,m1,c1,B,r4,2026-11-01T11:00:00+08:00,2026-11-03T10:00:00+08:00,"
    "100.00,100.00,100.00,60.00,60.00\n"
)


def test_ledger_run_order_independence(spark, small_delta, tmp_path):
    silver = scenario(spark)
    settlements = str(tmp_path / "settlements")
    cfg = OnetrackConfig(
        warehouse_dir=str(tmp_path / "wh"), settlement_dir=settlements, partition_start=START
    )
    empty_day = dt.date(2026, 11, 5)  # nothing landed: no entries, computed without a Spark plan

    # 1. Daily, in order, each day seeing only what had landed by then; files published each day.
    for day in [*DAYS, empty_day]:
        summary = run_ledger_through(spark, cfg, day, silver=_as_landed(silver, day))
        assert summary["days_computed"] == [day.isoformat()]
        assert publish_settlement_day(spark, cfg, day)["status"] == "published"
    forward = ledger_rows(_ledger(spark, cfg))
    assert forward == EXPECTED
    assert _days(spark, cfg) == {"2026-11-02": 3, "2026-11-03": 2, "2026-11-04": 2, "2026-11-05": 0}
    assert summary["entries"] == 0 and summary["ad_fee_refund"] == "0.00"
    forward_rows = sorted(tuple(r) for r in _ledger(spark, cfg).collect())
    published = {
        d: open(f"{settlements}/dt={d}/ad_fee_refunds_{d}.csv", "rb").read()
        for d in ("2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05")
    }
    assert published["2026-11-03"] == SETTLED_1103.encode()
    assert published["2026-11-05"] == SETTLED_1103.split("\n")[0].encode() + b"\n"  # header only
    # m1: -15.00 + 60.00 = 45.00
    summary_1103 = open(f"{settlements}/dt=2026-11-03/merchant_summary_2026-11-03.csv").read()
    assert summary_1103 == "settlement_date,merchant_id,entries,ad_fee_refund\n2026-11-03,m1,2,45.00\n"
    assert all(sf.verify_day(settlements, dt.date.fromisoformat(d)) == [] for d in published)

    # 2. From scratch, newest day first, then older days again (everything landed).
    shutil.rmtree(tmp_path / "wh" / "finance")
    with pytest.raises(RuntimeError, match="not been computed"):
        publish_settlement_day(spark, cfg, DAYS[0])
    first = run_ledger_through(spark, cfg, empty_day, silver=silver)
    assert first["days_computed"] == [d.isoformat() for d in [*DAYS, empty_day]]
    for day in reversed(DAYS):
        again = run_ledger_through(spark, cfg, day, silver=silver)
        assert again["days_computed"] == [] and again["days_written"] == [] and not again["rewritten"]
    assert sorted(tuple(r) for r in _ledger(spark, cfg).collect()) == forward_rows
    # ... and the files regenerate byte for byte
    for d in published:
        assert publish_settlement_day(spark, cfg, dt.date.fromisoformat(d))["status"] == "unchanged"
        assert open(f"{settlements}/dt={d}/ad_fee_refunds_{d}.csv", "rb").read() == published[d]

    # 3. New data landing in an old folder would change a day that later days build on: refused.
    late = dict(silver)
    late["returns"] = silver["returns"].unionByName(
        returns_df(spark, [ret("r9", "C", "2026-11-02T09:00:00+08:00", "1.00", "2026-11-02")])
    )
    with pytest.raises(LedgerDriftError):
        run_ledger_through(spark, cfg, DAYS[0], silver=late)
    assert sorted(tuple(r) for r in _ledger(spark, cfg).collect()) == forward_rows


def test_returns_out_of_scope(spark):
    from assets.finance.ledger import returns_out_of_scope

    D = dt.date(2026, 11, 10)  # lookback 60 days -> orders paid from 2026-09-11 on are in scope
    orders = orders_df(
        spark,
        [
            {"order_id": "old", "paid_at": "2026-09-10T23:00:00+08:00", "dt": "2026-09-10"},
            {"order_id": "new", "paid_at": "2026-09-11T00:00:00+08:00", "dt": "2026-09-11"},
            # landed the day before its payment (the day of slack the landing rule allows); its
            # return is refunded 20 minutes inside the window: the order's versions are read back
            # to (earliest refund - refund window - 1 day), which still includes this one
            {"order_id": "edge", "paid_at": "2026-08-21T00:30:00+08:00", "dt": "2026-08-20"},
        ],
    )
    returns = returns_df(
        spark,
        [
            ret("late", "old", "2026-09-20T10:00:00+08:00", "10.00", "2026-11-10"),  # reported
            ret("settled", "old", "2026-09-20T10:00:00+08:00", "10.00", "2026-09-21"),  # in the ledger
            ret("type", "old", "2026-09-20T10:00:00+08:00", "10.00", "2026-11-10", return_type="refund_only"),
            ret("window", "old", "2026-10-10T23:00:01+08:00", "10.00", "2026-11-10"),  # paid + 30 d + 1 s
            ret("inscope", "new", "2026-09-20T10:00:00+08:00", "10.00", "2026-11-10"),
            ret("edge", "edge", "2026-09-20T00:10:00+08:00", "10.00", "2026-11-10"),  # reported
            # landed 70 days before it was stamped (breaks the landing rule): older than the day's
            # earliest stamp (09-20) less a day, its partition is not read; read, it would be
            # "late"'s latest version and take it off the report
            ret(
                "late",
                "old",
                None,
                "10.00",
                "2026-09-01",
                status="cancelled",
                updated_at="2026-11-09T10:00:00+08:00",
            ),
        ],
    )
    ledger = prior_entry(spark, "2026-09-21", "old", "settled", "10.00", "1.00")
    cfg = OnetrackConfig(partition_start="2026-09-01")
    rows = returns_out_of_scope(orders, returns, ledger, D, cfg).collect()
    assert sorted(r["return_id"] for r in rows) == ["edge", "late"]

    # Refunded on or after first day + refund window (10-11): whatever its order, the return was
    # refunded after that order's window if the order was paid before the scope; so on a day
    # with only such returns no order is read (an orders frame that fails when read proves it).
    recent = returns_df(spark, [ret("recent", "old", "2026-10-11T00:00:00+08:00", "10.00", "2026-11-10")])
    unreadable = orders.withColumn(
        "order_id",
        F.when(F.col("order_id").isNotNull(), F.raise_error(F.lit("orders were read"))).otherwise(
            F.col("order_id")
        ),
    )
    assert returns_out_of_scope(unreadable, recent, ledger, D, cfg).collect() == []
    with pytest.raises(Exception, match="orders were read"):
        returns_out_of_scope(unreadable, returns, ledger, D, cfg).collect()
