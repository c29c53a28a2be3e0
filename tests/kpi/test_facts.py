"""``gold/kpi_order_facts``: the facts committed as each day's changes equal the whole computation.

On the end-to-end run (every fault injected, days run through the Dagster job), and on a copy of
its warehouse with a 2-day restatement window, so that a paid date leaves the window.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from assets.kpi.assets import read_kpi_inputs
from assets.kpi.facts import FACT_COLUMNS, facts_table, order_facts_as_of, run_order_facts
from assets.kpi.metrics import cohort_order_facts
from tests.conftest import E2E_DAYS as DAYS

pytestmark = pytest.mark.slow


def _rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.select(*FACT_COLUMNS).collect())


def _whole(spark, cfg, day):
    return cohort_order_facts(read_kpi_inputs(spark, cfg, day), day, cfg)


def test_each_day_committed_as_changes_equals_the_whole_computation(spark, pipeline):
    assert pipeline["ok"]
    cfg = pipeline["cfg"]
    table = facts_table(spark, cfg)
    mapped = table.snapshots()
    assert set(DAYS) <= set(mapped)
    assert mapped[DAYS[0]].base_version is None  # the first day is computed whole
    # later days as changes to the one before (from the inputs' change feeds), else this test would
    # compare the whole computation with itself
    assert all(mapped[day].base_version is not None for day in DAYS[1:])
    for day in DAYS:
        stored = order_facts_as_of(spark, cfg, day)
        assert _rows(stored) == _rows(_whole(spark, cfg, day))
        assert stored.filter(F.col("dt") == F.lit(day)).count() > 0  # the day's own cohort is there


def test_a_day_writes_only_the_orders_that_changed(spark, pipeline):
    cfg = pipeline["cfg"]
    table = facts_table(spark, cfg)
    last = table.snapshots()[DAYS[-1]]
    metrics = (
        DeltaTable.forPath(spark, table.path)
        .history()
        .filter(F.col("version") == F.lit(last.merge_version))
        .select("operation", "operationMetrics")
        .first()
    )
    assert metrics["operation"] == "MERGE"
    written = int(metrics["operationMetrics"]["numTargetRowsInserted"]) + int(
        metrics["operationMetrics"]["numTargetRowsUpdated"]
    )
    total = order_facts_as_of(spark, cfg, DAYS[-1]).count()
    new_cohort = order_facts_as_of(spark, cfg, DAYS[-1]).filter(F.col("dt") == F.lit(DAYS[-1])).count()
    assert new_cohort <= written < total


def test_paid_dates_leaving_a_short_window_are_dropped(spark, pipeline, tmp_path):
    """Window of 2 days: on the third day the first paid date leaves the facts."""
    cfg = pipeline["cfg"]
    warehouse = tmp_path / "warehouse"
    shutil.copytree(cfg.warehouse_dir, warehouse)
    short = dataclasses.replace(cfg, warehouse_dir=str(warehouse), restatement_window_days=2)
    bases = []
    for day in DAYS:
        written = run_order_facts(spark, short, day, read_kpi_inputs(spark, short, day))
        bases.append(written["base"])
        stored = order_facts_as_of(spark, short, day)
        assert _rows(stored) == _rows(_whole(spark, short, day))
    assert bases == [None, DAYS[0], DAYS[1]]
    last = order_facts_as_of(spark, short, DAYS[-1])
    assert {r["dt"] for r in last.select("dt").distinct().collect()} == set(DAYS[1:])
