"""The KPI tables' order figures computed from the day's changes equal those of the full computation.

1. Pure (:func:`order_figures_changes`), on hand-built facts as of B = 11-10 and D = 11-11, with a
   3-day restatement window (B's window [11-08, 11-10], D's [11-09, 11-11]):

   as of B                                   as of D
   o1 11-08 m1 u1 organic 10.00              (left the window)
   o2 11-09 m1 u1 ad c1   20.00              returned: refund 20.00, settled 0.00 (a return landed)
   o3 11-09 m1 u2 organic  5.00              moved to merchant m2 (u2 leaves m1's buyers of 11-09)
   o4 11-10 m2 u3 direct   7.00              removed (u3 stays a buyer of (11-10, m2) through o5)
   o5 11-10 m2 u3 direct   3.00              unchanged
   o6 11-10 m1 u4 organic  1.00              unchanged
   -                                         o7 11-11 m1 u1 ad c1 12.00 (new day)
   -                                         o8 11-09 m1 u5 organic 4.00, re-exposed "ad" (late)

   By hand, as of D: (11-09, m1, ad, c1): 1 order 20.00, 1 returned, refund 20.00, settled 0.00;
   (11-09, m2, organic): o3; (11-09, m1, organic, "ad"): o8; (11-10, m2, direct): o5 3.00 only;
   buyers 11-09: u1, u2, u5 = 3 (m1: u1, u5 = 2; m2: u2 = 1); 11-10: u3, u4 = 2; 11-11: 1.
   Both must equal :func:`order_figures` of the facts as of D.

2. End to end: the shared pipeline run (tests/conftest.py) takes the changes path on its later days,
   and the KPI tables it stored as of each day equal the full computation from the same inputs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from assets.kpi.metrics import (
    BUYER_KEYS,
    KPI_TABLE_KEYS,
    compute_kpi_tables,
    order_figures,
    order_figures_changes,
)
from pipelines.config import OnetrackConfig

B, D = dt.date(2026, 11, 10), dt.date(2026, 11, 11)
CFG = replace(OnetrackConfig(), restatement_window_days=3)
FACTS_SCHEMA = (
    "dt DATE, order_id STRING, user_id STRING, merchant_id STRING, attributed_pool STRING, "
    "campaign_id STRING, reexposure STRING, order_amount DECIMAL(18,2), platform_subsidy DECIMAL(18,2), "
    "cross_pool_subsidy DECIMAL(18,2), is_returned BOOLEAN, refund_amount DECIMAL(18,2), "
    "settled_gmv DECIMAL(18,2), found_cheaper_returns LONG"
)


def _fact(day, order, user, merchant, pool, amount, campaign=None, reexposure="none", refund=None):
    amount = Decimal(amount)
    refund = None if refund is None else Decimal(refund)
    settled = amount if refund is None else amount - refund
    zero = Decimal("0.00")
    return (
        dt.date(2026, 11, day), order, user, merchant, pool, campaign, reexposure, amount, zero, zero,
        refund is not None, refund or zero, settled, 1 if refund is not None else 0,
    )  # fmt: skip


AS_OF_B = [
    _fact(8, "o1", "u1", "m1", "organic", "10.00"),
    _fact(9, "o2", "u1", "m1", "ad", "20.00", campaign="c1"),
    _fact(9, "o3", "u2", "m1", "organic", "5.00"),
    _fact(10, "o4", "u3", "m2", "direct", "7.00"),
    _fact(10, "o5", "u3", "m2", "direct", "3.00"),
    _fact(10, "o6", "u4", "m1", "organic", "1.00"),
]
AS_OF_D = [
    _fact(9, "o2", "u1", "m1", "ad", "20.00", campaign="c1", refund="20.00"),
    _fact(9, "o3", "u2", "m2", "organic", "5.00"),
    _fact(10, "o5", "u3", "m2", "direct", "3.00"),
    _fact(10, "o6", "u4", "m1", "organic", "1.00"),
    _fact(11, "o7", "u1", "m1", "ad", "12.00", campaign="c1"),
    _fact(9, "o8", "u5", "m1", "organic", "4.00", reexposure="ad"),
]
CHANGED = {"o2", "o3", "o4", "o7", "o8"}


def _rows(frame) -> list[tuple]:
    return sorted((tuple(r) for r in frame.collect()), key=repr)


def _same_figures(actual, expected) -> None:
    assert _rows(actual.cube.select(*expected.cube.columns)) == _rows(expected.cube)
    for level in BUYER_KEYS:
        assert _rows(actual.buyers[level]) == _rows(expected.buyers[level]), level


def test_changes_give_the_full_figures(spark):
    before = spark.createDataFrame(AS_OF_B, FACTS_SCHEMA)
    after = spark.createDataFrame(AS_OF_D, FACTS_SCHEMA)
    window = dt.date(2026, 11, 9)  # D's first day
    changed = [r for r in AS_OF_B + AS_OF_D if r[1] in CHANGED and r[0] >= window]
    pairs = {(r[0], r[2]) for r in changed}

    def members(rows):
        kept = [(r[0], r[3], r[2]) for r in rows if (r[0], r[2]) in pairs and r[0] >= window]
        return spark.createDataFrame(kept, "dt DATE, merchant_id STRING, user_id STRING")

    def of_changed(frame):
        return frame.filter(frame.order_id.isin(*CHANGED) & (frame.dt >= window))

    figures = order_figures_changes(
        order_figures(before),
        of_changed(before),
        of_changed(after),
        members(AS_OF_B),
        members(AS_OF_D),
        D,
        CFG,
    )
    expected = order_figures(after)
    _same_figures(figures, expected)

    # the figures worked out by hand (module docstring)
    cube = {
        (r["dt"].day, r["merchant_id"], r["attributed_pool"], r["reexposure"]): r
        for r in figures.cube.collect()
    }
    assert set(cube) == {
        (9, "m1", "ad", "none"),
        (9, "m2", "organic", "none"),
        (9, "m1", "organic", "ad"),
        (10, "m2", "direct", "none"),
        (10, "m1", "organic", "none"),
        (11, "m1", "ad", "none"),
    }
    returned = cube[(9, "m1", "ad", "none")]
    assert (returned["orders"], returned["returned_orders"]) == (1, 1)
    assert (returned["refund_amount"], returned["settled_gmv"]) == (Decimal("20.00"), Decimal("0.00"))
    assert cube[(10, "m2", "direct", "none")]["order_amount"] == Decimal("3.00")
    day_buyers = {r["dt"].day: r["buyers"] for r in figures.buyers["day"].collect()}
    assert day_buyers == {9: 3, 10: 2, 11: 1}
    merchant_buyers = {
        (r["dt"].day, r["merchant_id"]): r["buyers"] for r in figures.buyers["merchant"].collect()
    }
    assert merchant_buyers == {(9, "m1"): 2, (9, "m2"): 1, (10, "m2"): 1, (10, "m1"): 1, (11, "m1"): 1}


@pytest.mark.slow
def test_pipeline_days_take_the_changes_path_and_equal_the_full_tables(spark, pipeline):
    from assets.kpi.assets import read_kpi_inputs
    from assets.kpi.metrics import cohort_order_facts
    from assets.kpi.steps import kpi_order_figures
    from assets.storage import read_table
    from tests.conftest import E2E_DAYS, onetrack_roots

    assert pipeline["ok"], "\n".join(pipeline["log"][-20:])
    cfg = pipeline["cfg"]
    with onetrack_roots(pipeline["root"]):
        for day in E2E_DAYS[1:]:
            inputs = read_kpi_inputs(spark, cfg, day)
            figures, computed = kpi_order_figures(spark, cfg, day, inputs)
            assert computed["base"] == day - dt.timedelta(days=1), computed
            assert computed["changed_orders"] > 0
            _same_figures(figures, order_figures(cohort_order_facts(inputs, day, cfg)))
            full = compute_kpi_tables(inputs, day, cfg)
            for name in KPI_TABLE_KEYS:
                stored = read_table(spark, cfg.table_path("gold", name)).filter(f"as_of = '{day}'")
                assert stored.count() > 0, (name, day)
                assert _rows(stored.select(*full[name].columns)) == _rows(full[name]), (name, day)
