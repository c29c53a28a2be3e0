"""The GE suites of the executive path pass on the computed tables and catch broken ones."""

from __future__ import annotations

from decimal import Decimal

import pytest

from assets.kpi.checks import (
    kpi_reconciliation,
    kpi_suites,
    order_reexposure_suites,
    reconciliation_suites,
)
from assets.kpi.metrics import compute_kpi_tables
from assets.kpi.reexposure import compute_order_reexposure
from assets.serving.checks import SERVING_SUITES, row_count_frame
from pipelines.config import OnetrackConfig
from quality.runner import validate
from tests.kpi import builders as b

D = b.day("2026-12-10")
CFG = OnetrackConfig()


@pytest.fixture(scope="module")
def kpi_tables(kpi_inputs):
    tables = {name: frame.cache() for name, frame in compute_kpi_tables(kpi_inputs, D, CFG).items()}
    yield tables
    for frame in tables.values():
        frame.unpersist()


def failed_flags(outcome) -> set[str]:
    return {f["kwargs"].get("column") for f in outcome.failed}


@pytest.mark.parametrize(
    "table", ["kpi_daily", "kpi_merchant_daily", "kpi_campaign_daily", "return_attribution_daily"]
)
def test_kpi_suites_pass_on_computed_tables(kpi_tables, table):
    for suite in kpi_suites(CFG)[table]:
        outcome = validate(kpi_tables[table], suite)
        assert outcome.success, (suite.name, outcome.failed)


def test_tables_reconcile(kpi_tables):
    (suite,) = reconciliation_suites()
    outcome = validate(kpi_reconciliation(kpi_tables), suite)
    assert outcome.success, outcome.failed


def test_reexposure_suites_pass(spark, kpi_inputs):
    frame = compute_order_reexposure(
        kpi_inputs.order_attribution, kpi_inputs.returns, b.traffic(spark, []), D
    ).cache()
    for suite in order_reexposure_suites():
        outcome = validate(frame, suite)
        assert outcome.success, (suite.name, outcome.failed)
    frame.unpersist()


def test_kpi_daily_suites_catch_broken_rows(spark):
    day = b.day("2026-12-01")
    broken = b.gold_rows(
        spark,
        "kpi_daily",
        [
            # pools 5 + 0 + 0 != 10; settled 12 > paid 10; 3 returned of 2 orders; rate 1.5
            dict(
                dt=day,
                as_of=D,
                orders=2,
                buyers=2,
                payment_gmv=Decimal("10.00"),
                gmv_ad=Decimal("5.00"),
                settled_gmv=Decimal("12.00"),
                returned_orders=3,
                return_rate=Decimal("1.500000"),
            ),
            dict(dt=day, as_of=D),  # the same key twice in one snapshot
            dict(dt=b.day("2026-11-10"), as_of=D, settlement_final=True),  # D - 30: outside the window
        ],
    ).cache()
    contract, rules = kpi_suites(CFG)["kpi_daily"]
    contract_outcome = validate(broken, contract)
    assert not contract_outcome.success
    failed = {(f["expectation_type"], f["kwargs"].get("column")) for f in contract_outcome.failed}
    assert ("expect_column_values_to_be_between", "return_rate") in failed
    assert ("expect_column_values_to_be_unique", "dt") in failed
    rules_outcome = validate(broken, rules)
    assert failed_flags(rules_outcome) == {
        "pools_add_up_to_payment_gmv",
        "settled_gmv_at_most_payment_gmv",
        "returned_orders_at_most_orders",
        "dt_in_restatement_window",
    }  # settlement_final is right on every row: false for 12-01 (12-10 < 12-16), true for 11-10
    broken.unpersist()


def test_serving_row_count_suite(spark):
    good = row_count_frame(spark, {"kpi_daily": 3}, {"kpi_daily": 3})
    bad = row_count_frame(spark, {"kpi_daily": 2}, {"kpi_daily": 3})
    counts_suite = SERVING_SUITES[1]
    assert validate(good.filter("table_name = 'kpi_daily'"), counts_suite).success
    assert not validate(bad.filter("table_name = 'kpi_daily'"), counts_suite).success
