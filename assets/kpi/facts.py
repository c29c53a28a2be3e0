"""``gold/kpi_order_facts``: the per-order facts the KPI tables sum, as a versioned snapshot.

:func:`assets.kpi.metrics.cohort_order_facts` gives one row per order paid in the restatement
window ``[D-29, D]`` (SPEC §8). Computed whole every day, it re-reads and re-joins the window's
orders, returns and re-exposure, a month of orders at steady state. Stored as a versioned
snapshot (:mod:`assets.snapshots`, keyed by ``order_id``, partitioned by ``dt``, the paid date),
the run for D commits only the orders whose facts can have changed since the snapshot it builds
on, ``P``:

- the orders whose ``finance/order_attribution`` row changed (its change data feed for D: new
  payments, changed fields, orders that left the scope),
- the orders whose ``gold/order_reexposure`` row changed (its change data feed for D),
- the orders named by a return version landed in ``(P, D]`` (their return figures),

recomputed by the same :func:`cohort_order_facts` on inputs cut to those orders; the ones it no
longer gives (left the attribution or the window) are deleted, and the paid dates that left the
window go as whole partitions. Nothing else feeds an order's facts (``settlement_final`` and the
ratios depend on D, and are computed when the tables are aggregated), so the snapshot equals the
full computation (tests/kpi/test_facts.py). Without a usable ``P`` or change feeds that start at
the versions ``P`` was computed from, the snapshot is computed whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from assets.finance.ledger import attribution_table
from assets.kpi.metrics import MONEY, KpiInputs, cohort_order_facts, restatement_window
from assets.kpi.steps import reexposure_table
from assets.snapshots import SnapshotTable
from assets.storage import LANDING_SLACK_DAYS, materialize_small
from pipelines.config import OnetrackConfig

ORDER_FACTS_TABLE = ("gold", "kpi_order_facts")
ORDER_FACTS_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.DateType()),
        T.StructField("order_id", T.StringType()),
        T.StructField("user_id", T.StringType()),
        T.StructField("merchant_id", T.StringType()),
        T.StructField("attributed_pool", T.StringType()),
        T.StructField("campaign_id", T.StringType()),
        T.StructField("order_amount", MONEY),
        T.StructField("pay_amount", MONEY),
        T.StructField("platform_subsidy", MONEY),
        T.StructField("cross_pool_subsidy", MONEY),
        T.StructField("is_returned", T.BooleanType()),
        T.StructField("refund_amount", MONEY),
        T.StructField("refunded_in_window", MONEY),
        T.StructField("found_cheaper_returns", T.LongType()),
        T.StructField("reexposure", T.StringType()),
        T.StructField("settled_gmv", MONEY),
        T.StructField("as_of", T.DateType()),
    ]
)
FACT_COLUMNS = [c for c in ORDER_FACTS_SCHEMA.fieldNames() if c != "as_of"]


def facts_table(spark: SparkSession, cfg: OnetrackConfig) -> SnapshotTable:
    return SnapshotTable(spark, cfg, ORDER_FACTS_TABLE, ORDER_FACTS_SCHEMA, key="order_id", partition_by="dt")


def facts_settings(cfg: OnetrackConfig) -> dict:
    """The settings the facts depend on (a snapshot is only built on one with the same)."""
    return {
        "restatement_window_days": cfg.restatement_window_days,
        "settlement_window_days": cfg.settlement_window_days,
        "attribution_window_days": cfg.attribution_window_days,
        "reexposure_window_days": cfg.reexposure_window_days,
        "ledger_lookback_days": cfg.ledger_lookback_days,
    }


def facts_candidates(
    changed_attribution: DataFrame,
    changed_reexposure: DataFrame,
    silver_returns: DataFrame,
    previous: dt.date,
    as_of_date: dt.date,
) -> DataFrame:
    """The ``order_id`` of every order whose facts can differ between the snapshots of
    ``previous`` and ``as_of_date`` (a superset is fine)."""
    returned = silver_returns.filter(
        (F.col("dt") > F.lit(previous)) & (F.col("dt") <= F.lit(as_of_date))
    ).select("order_id")
    return (
        changed_attribution.select("order_id")
        .unionByName(changed_reexposure.select("order_id"))
        .unionByName(returned)
        .filter(F.col("order_id").isNotNull())
        .distinct()
    )


def order_facts_changes(
    inputs: KpiInputs, candidates: DataFrame, as_of_date: dt.date, cfg: OnetrackConfig
) -> tuple[DataFrame, DataFrame]:
    """``(upserts, removed)``: the facts as of D of the ``candidates`` (whole rows) and the
    candidates that have none (keys to delete): :func:`cohort_order_facts` on inputs cut to them."""
    keys = materialize_small(candidates.select("order_id").distinct())
    first_paid = restatement_window(as_of_date, cfg)[0]
    # every version of the returns that name a candidate (a later version decides), from the
    # landing partitions the window's returns can be in (as returns_as_of reads them)
    versions = inputs.returns.filter(
        (F.col("dt") >= F.lit(first_paid - dt.timedelta(days=LANDING_SLACK_DAYS)))
        & (F.col("dt") <= F.lit(as_of_date))
    )
    their_returns = materialize_small(
        versions.join(keys, on="order_id", how="left_semi").select("return_id").distinct()
    )
    cut = dataclasses.replace(
        inputs,
        order_attribution=inputs.order_attribution.join(keys, on="order_id", how="left_semi"),
        returns=versions.join(their_returns, on="return_id", how="left_semi"),
        order_reexposure=inputs.order_reexposure.join(keys, on="order_id", how="left_semi"),
    )
    upserts = cohort_order_facts(cut, as_of_date, cfg).select(*FACT_COLUMNS).localCheckpoint(eager=True)
    removed = keys.join(upserts.select("order_id"), on="order_id", how="left_anti")
    return upserts, removed


def _input_versions(tables: list[SnapshotTable], day: dt.date) -> dict | None:
    found = {t.label: t.snapshots().get(day) for t in tables}
    if any(s is None for s in found.values()):
        return None  # an input computed on the fly: the next day cannot start from its version
    return {label: s.version for label, s in found.items()}


def run_order_facts(spark: SparkSession, cfg: OnetrackConfig, day: dt.date, inputs: KpiInputs) -> dict:
    """Commit the facts snapshot as of D; returns the version written, ``base`` (None: whole)
    and the counts of rows written and keys removed."""
    table = facts_table(spark, cfg)
    sources = [attribution_table(spark, cfg), reexposure_table(spark, cfg)]
    settings = facts_settings(cfg)
    versions = _input_versions(sources, day)
    base = table.base_before(day, settings)
    changed = None
    if base is not None and versions is not None:
        since = table.snapshots()[base].inputs or {}
        changed = [
            None if source.label not in since else source.changed_keys(day, since[source.label])
            for source in sources
        ]
    if changed is None or any(keys is None for keys in changed):
        facts = cohort_order_facts(inputs, day, cfg).select(*FACT_COLUMNS)
        written = table.write_full(facts, day, settings, inputs=versions)
        return {"table_path": table.path, "base": None, "rows_written": None, "keys_removed": None, **written}
    candidates = facts_candidates(changed[0], changed[1], inputs.returns, base, day)
    upserts, removed = order_facts_changes(inputs, candidates, day, cfg)
    written = table.write_changes(
        base, day, upserts, removed, settings, drop_below=restatement_window(day, cfg)[0], inputs=versions
    )
    return {"table_path": table.path, "base": base, **written}


def order_facts_as_of(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> DataFrame | None:
    """The stored facts as of D, without ``as_of`` (None if no readable snapshot is mapped)."""
    stored = facts_table(spark, cfg).read(day)
    return None if stored is None else stored.select(*FACT_COLUMNS)
