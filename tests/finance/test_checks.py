"""The finance GE suites pass on correct frames and catch the errors they are meant to."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from assets.finance.checks import (
    AD_FEE_ALLOCATION_SUITES,
    AD_FEE_REFUND_LEDGER_SUITES,
    ORDER_ATTRIBUTION_SUITES,
)
from assets.finance.schemas import (
    AD_FEE_ALLOCATION_SCHEMA,
    LEDGER_DAYS_SCHEMA,
    LEDGER_SCHEMA,
    ORDER_ATTRIBUTION_SCHEMA,
)
from quality.checks import check_results

D = dt.date(2026, 11, 5)
PAID = dt.datetime.fromisoformat("2026-11-04T10:00:00+08:00")
REFUNDED = dt.datetime.fromisoformat("2026-11-05T10:00:00+08:00")


def _money(v):
    return None if v is None else Decimal(v)


def _passed(results):
    return {r.check_name: r.passed for r in results}


def ledger_row(entry_type, order_id, return_id, fee, refund):
    return (
        D, entry_type, "m1", "c1", order_id, return_id, PAID, REFUNDED, Decimal("100.00"), Decimal("100.00"),
        Decimal("50.00"), _money(fee), _money(refund),
    )  # fmt: skip


def test_ledger_suites(spark):
    good = spark.createDataFrame(
        [
            ledger_row("refund", "o1", "r1", "10.00", "5.00"),
            ledger_row("reversal", "o1", "r1", "10.00", "-5.00"),
            ledger_row("refund", "o1", "r2", "10.00", "10.00"),
        ],
        LEDGER_SCHEMA,
    ).cache()
    assert _passed(check_results("finance/ad_fee_refund_ledger", good, AD_FEE_REFUND_LEDGER_SUITES)) == {
        "ad_fee_refund_ledger_schema": True,
        "ad_fee_refund_ledger_keys": True,
        "ad_fee_refund_ledger_amounts": True,
        "ad_fee_refund_ledger_order_cap": True,
    }
    bad = spark.createDataFrame(
        [
            # r1 settled twice; together 8.00 + 8.00 = 16.00 > fee 10.00 for o1
            ledger_row("refund", "o1", "r1", "10.00", "8.00"),
            ledger_row("refund", "o1", "r1", "10.00", "8.00"),
            # a negative refund and a positive reversal
            ledger_row("refund", "o2", "r3", "10.00", "-1.00"),
            ledger_row("reversal", "o3", "r4", "10.00", "1.00"),
        ],
        LEDGER_SCHEMA,
    ).cache()
    results = {
        r.check_name: r
        for r in check_results("finance/ad_fee_refund_ledger", bad, AD_FEE_REFUND_LEDGER_SUITES)
    }
    assert {k: r.passed for k, r in results.items()} == {
        "ad_fee_refund_ledger_schema": True,
        "ad_fee_refund_ledger_keys": False,
        "ad_fee_refund_ledger_amounts": False,
        "ad_fee_refund_ledger_order_cap": False,
    }
    # 1 negative refund + 1 positive reversal
    assert results["ad_fee_refund_ledger_amounts"].metadata["unexpected_count"].value == 2
    # o1 (16.00 > 10.00) and o2 (-1.00 < 0)
    assert results["ad_fee_refund_ledger_order_cap"].metadata["unexpected_count"].value == 2


def test_allocation_and_attribution_suites(spark):
    def alloc(campaign, order_id, spend, fee, unattributed):
        return (D, D, campaign, "m1", _money(spend), order_id, None if order_id is None else Decimal("10.00"),
                _money(fee), _money(unattributed))  # fmt: skip

    good = spark.createDataFrame(
        [
            alloc("c1", "o1", "1.00", "0.34", "0"),
            alloc("c1", "o2", "1.00", "0.33", "0"),
            alloc("c1", "o3", "1.00", "0.33", "0"),
            alloc("c2", None, "5.00", None, "5.00"),
        ],
        AD_FEE_ALLOCATION_SCHEMA,
    ).cache()
    assert all(_passed(check_results("finance/ad_fee_allocation", good, AD_FEE_ALLOCATION_SUITES)).values())
    bad = spark.createDataFrame(
        [alloc("c1", "o1", "1.00", "0.33", "0"), alloc("c1", "o2", "1.00", "0.33", "0")],  # 0.66 != 1.00
        AD_FEE_ALLOCATION_SCHEMA,
    ).cache()
    assert _passed(check_results("finance/ad_fee_allocation", bad, AD_FEE_ALLOCATION_SUITES)) == {
        "ad_fee_allocation_schema": True,
        "ad_fee_allocation_keys": True,
        "ad_fee_allocation_sums_to_spend": False,
    }

    def attr(order_id, pool, campaign, touch):
        return (D, order_id, "u1", "m1", "p1", "s1", 1, Decimal("10.00"), Decimal("0.00"), None, PAID,
                dt.date(2026, 11, 4), Decimal("10.00"), Decimal("10.00"), pool, campaign, touch,
                None if touch is None else PAID)  # fmt: skip

    attribution = spark.createDataFrame(
        [attr("o1", "ad", "c1", "e1"), attr("o2", "direct", None, None), attr("o3", "organic", None, "e3")],
        ORDER_ATTRIBUTION_SCHEMA,
    ).cache()
    assert all(
        _passed(check_results("finance/order_attribution", attribution, ORDER_ATTRIBUTION_SUITES)).values()
    )
    wrong = spark.createDataFrame(
        [attr("o1", "ad", None, "e1"), attr("o1", "paid", None, None)], ORDER_ATTRIBUTION_SCHEMA
    ).cache()
    assert _passed(check_results("finance/order_attribution", wrong, ORDER_ATTRIBUTION_SUITES)) == {
        "order_attribution_schema": True,
        "order_attribution_keys": False,  # o1 twice, pool "paid"
        "order_attribution_touch": False,  # ad without campaign
    }


def test_the_ledger_checks_validate_the_orders_of_the_day_with_all_their_entries_once_the_day_before_passed(
    spark, tmp_path
):
    from assets.finance.ledger import LEDGER_DAYS_TABLE, LEDGER_TABLE, _replace_days
    from assets.finance.steps import ledger_check_frame
    from pipelines.config import OnetrackConfig
    from quality.runner import validations_dir

    cfg = OnetrackConfig(warehouse_dir=str(tmp_path))
    root, names = validations_dir(cfg.warehouse_dir), [s.name for s in AD_FEE_REFUND_LEDGER_SUITES]
    d1, d2, d3 = (D + dt.timedelta(days=n) for n in range(3))

    def settle(day, entries):  # (order, return, refund) of fee 10.00 each, as the ledger step writes a day
        rows = [(day, *ledger_row("refund", o, r, "10.00", refund)[1:]) for o, r, refund in entries]
        _replace_days(spark.createDataFrame(rows, LEDGER_SCHEMA), cfg.table_path(*LEDGER_TABLE), [day])
        marker = spark.createDataFrame([(day, len(rows), dt.datetime.now(dt.UTC))], LEDGER_DAYS_SCHEMA)
        _replace_days(marker, cfg.table_path(*LEDGER_DAYS_TABLE), [day])

    def check(day):
        frame, record = ledger_check_frame(spark, cfg, day, names, root)
        results = check_results(
            "finance/ad_fee_refund_ledger", frame, AD_FEE_REFUND_LEDGER_SUITES,
            validations_root=root, partition=day.isoformat(), record=record,
        )  # fmt: skip
        return sorted(r["return_id"] for r in frame.collect()), all(r.passed for r in results)

    settle(d1, [("o1", "r1", "5.00"), ("o2", "r2", "4.00")])
    assert check(d1) == (["r1", "r2"], True)  # nothing validated before: the whole ledger
    # d2 settles o1 again: over its fee (5.00 + 6.00 > 10.00), seen with o1's entry of d1; o2 not read.
    settle(d2, [("o1", "r3", "6.00")])
    assert check(d2) == (["r1", "r3"], False)
    # d3 builds on a failed d2: the whole ledger, and o1 still fails it.
    settle(d3, [("o3", "r4", "1.00")])
    assert check(d3) == (["r1", "r2", "r3", "r4"], False)
    # d2 written again within the cap, then d3: only o3's entry.
    settle(d2, [("o1", "r3", "5.00")])
    assert check(d2) == (["r1", "r3"], True)
    assert check(d3) == (["r4"], True)
    # d1 written again after d2 passed: d3 validates the whole ledger.
    settle(d1, [("o1", "r1", "5.00"), ("o2", "r2", "4.00")])
    assert check(d3) == (["r1", "r2", "r3", "r4"], True)
