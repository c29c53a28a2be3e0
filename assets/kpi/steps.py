"""I/O steps of the executive path: ``gold/order_reexposure`` and the KPI tables' order figures.

``gold/order_reexposure`` is a versioned snapshot like ``finance/order_attribution``.

The run for D commits the snapshot as of D as the changes from the latest earlier one
(:func:`assets.kpi.reexposure.order_reexposure_changes`), driven by the keys the attribution's
own commit for D changed (its change data feed); without a usable earlier snapshot, or when the
attribution as of D was not committed as changes to the version that snapshot was computed from,
the whole snapshot is computed from scratch. Both give the same rows (tests/kpi/test_reexposure.py).

The KPI tables' order figures (:class:`assets.kpi.metrics.OrderFigures`: the window's orders summed
per finest key, and distinct buyers) are kept per run date in ``gold/kpi_order_figures``, with the
versions of the inputs they were computed from. The run for D computes them from those of the
latest earlier run date B and the orders that changed since (:func:`kpi_order_figures`) when the
attribution and re-exposure snapshots as of D were committed as the changes from the versions B
used; otherwise from all the window's orders. Both give the same rows (tests/kpi/test_incremental.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from assets.finance.asof import scope_start
from assets.finance.ledger import attribution_table, read_silver
from assets.finance.steps import order_attribution_as_of
from assets.kpi.inputs import snapshot
from assets.kpi.metrics import (
    BUYER_KEYS,
    CUBE_COUNTS,
    CUBE_MONEY,
    MONEY,
    ORDER_CUBE_KEYS,
    KpiInputs,
    OrderFigures,
    cohort_order_facts,
    order_figures,
    order_figures_changes,
    restatement_window,
)
from assets.kpi.reexposure import ORDER_REEXPOSURE_SCHEMA, compute_order_reexposure, order_reexposure_changes
from assets.snapshots import SnapshotTable
from assets.storage import (
    LANDING_SLACK_DAYS,
    latest_partition_before,
    materialize_small,
    partition_settings,
    read_table,
    replace_partition,
    replaced_partitions_since,
    table_exists,
    table_id,
    table_version,
)
from pipelines.config import OnetrackConfig

ORDER_REEXPOSURE_TABLE = ("gold", "order_reexposure")
KPI_FIGURES_TABLE = ("gold", "kpi_order_figures")
SILVER_RETURNS_LABEL = "silver/returns"
# gold/kpi_order_figures: per as_of, the cube rows (level "cube") and the buyers per day ("day")
# and per (day, merchant) ("merchant"); the columns a level has not are null.
KPI_FIGURES_SCHEMA = T.StructType(
    [
        T.StructField("level", T.StringType(), False),
        *(T.StructField(c, T.DateType() if c == "dt" else T.StringType()) for c in ORDER_CUBE_KEYS),
        T.StructField("orders", T.LongType()),
        *(T.StructField(c, MONEY) for c in CUBE_MONEY),
        *(T.StructField(c, T.LongType()) for c in CUBE_COUNTS if c != "orders"),
        T.StructField("buyers", T.LongType()),
        T.StructField("as_of", T.DateType(), False),
    ]
)
# the columns of the gold figures read back in the order the pure functions produce them
_CUBE_COLUMNS = (*ORDER_CUBE_KEYS, "orders", *CUBE_MONEY, *(c for c in CUBE_COUNTS if c != "orders"))


def reexposure_table(spark: SparkSession, cfg: OnetrackConfig) -> SnapshotTable:
    """``gold/order_reexposure``: one row per order of the attribution snapshot, stored
    partitioned by ``paid_date`` (the same scope as the attribution's)."""
    return SnapshotTable(
        spark,
        cfg,
        ORDER_REEXPOSURE_TABLE,
        ORDER_REEXPOSURE_SCHEMA,
        key="order_id",
        partition_by="paid_date",
        change_feed=True,  # the KPI figures read the orders each day changed
    )


def reexposure_settings(cfg: OnetrackConfig) -> dict:
    """The settings the snapshot depends on: a snapshot is only built on one with the same."""
    return {
        "reexposure_window_days": cfg.reexposure_window_days,
        "ledger_lookback_days": cfg.ledger_lookback_days,
        "attribution_window_days": cfg.attribution_window_days,
    }


def kpi_figures_settings(cfg: OnetrackConfig) -> dict:
    """The settings the stored order figures depend on (beyond the inputs' own)."""
    return {
        "restatement_window_days": cfg.restatement_window_days,
        "settlement_window_days": cfg.settlement_window_days,
    }


def _from_scratch(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> DataFrame:
    """The reference computation of the snapshot as of D from the attribution as of D and silver."""
    silver = read_silver(spark, cfg)
    return compute_order_reexposure(
        order_attribution_as_of(spark, cfg, day),
        silver["returns"],
        silver["traffic"],
        day,
        reexposure_window_days=cfg.reexposure_window_days,
    )


def order_reexposure_as_of(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> DataFrame:
    """The re-exposure snapshot as of D: the stored one, else computed from the attribution as
    of D and silver (the same rows)."""
    stored = reexposure_table(spark, cfg).read(day)
    return stored if stored is not None else _from_scratch(spark, cfg, day)


def run_order_reexposure(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> dict:
    """Commit the snapshot as of D of ``gold/order_reexposure``; returns the version written and
    ``base``, the snapshot it was computed from (None: from scratch)."""
    table, attribution = reexposure_table(spark, cfg), attribution_table(spark, cfg)
    settings = reexposure_settings(cfg)
    attribution_now = attribution.snapshots().get(day)
    # which attribution version the rows come from: the next day's changes must start there
    inputs = None if attribution_now is None else {attribution.label: attribution_now.version}
    base = table.base_before(day, settings)
    changed = None
    if base is not None:
        since = (table.snapshots()[base].inputs or {}).get(attribution.label)
        changed = None if since is None else attribution.changed_keys(day, since)
    if changed is None:
        written = table.write_full(_from_scratch(spark, cfg, day), day, settings, inputs=inputs)
        return {"table_path": table.path, "base": None, **written}
    start = scope_start(day, cfg.ledger_lookback_days)
    silver = read_silver(spark, cfg)
    upserts, removed = order_reexposure_changes(
        attribution.read(day),
        changed,
        table.read(base),
        silver["returns"],
        silver["traffic"],
        day,
        base,
        reexposure_window_days=cfg.reexposure_window_days,
        scope_start=start,
    )
    written = table.write_changes(base, day, upserts, removed, settings, drop_below=start, inputs=inputs)
    return {"table_path": table.path, "base": base, **written}


# --- the KPI tables' order figures ----------------------------------------------------------------


def _figures_frame(figures: OrderFigures, day: dt.date) -> DataFrame:
    frames = [figures.cube.withColumn("level", F.lit("cube"))]
    frames += [frame.withColumn("level", F.lit(level)) for level, frame in figures.buyers.items()]
    rows = frames[0]
    for frame in frames[1:]:
        rows = rows.unionByName(frame, allowMissingColumns=True)
    rows = rows.withColumn("as_of", F.lit(day))
    return rows.select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in KPI_FIGURES_SCHEMA.fields))


def _stored_figures(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> OrderFigures:
    rows = read_table(spark, cfg.table_path(*KPI_FIGURES_TABLE)).filter(F.col("as_of") == F.lit(day))
    return OrderFigures(
        rows.filter(F.col("level") == "cube").select(*_CUBE_COLUMNS),
        {
            level: rows.filter(F.col("level") == level).select(*keys, "buyers")
            for level, keys in BUYER_KEYS.items()
        },
    )


def _used_inputs(
    attribution: SnapshotTable, reexposure: SnapshotTable, returns_version: dict | None, day: dt.date
) -> dict:
    """What the figures as of D are computed from: the table id and version of the attribution
    and re-exposure snapshots as of D and of silver/returns as read (None: not stored)."""
    used = {}
    for table in (attribution, reexposure):
        found = table.snapshots().get(day)
        used[table.label] = (
            None if found is None else {"table_id": table.table_id(), "version": found.version}
        )
    used[SILVER_RETURNS_LABEL] = returns_version
    return used


def _changed_inputs(spark, cfg, day, attribution, reexposure):
    """The latest earlier run date B of the stored figures and the change data feeds of the
    attribution's and re-exposure's commits of D from the versions B used; None when the figures
    as of D cannot be computed as changes (nothing stored, other settings, D not committed as the
    changes from those versions)."""
    path = cfg.table_path(*KPI_FIGURES_TABLE)
    previous = latest_partition_before(spark, path, "as_of", day)
    if previous is None:
        return None
    recorded = partition_settings(spark, path, {"as_of": previous}) or {}
    used = recorded.get("inputs") or {}
    returns = used.get(SILVER_RETURNS_LABEL)
    if recorded.get("settings") != kpi_figures_settings(cfg) or not isinstance(returns, dict):
        return None
    returns_path = cfg.table_path("silver", "returns")
    if returns["table_id"] != table_id(spark, returns_path):
        return None  # created again: its versions are another history
    # the returns as of B are those B read if no landing day up to B was written since (the
    # days after B are read as landed since B)
    replaced = replaced_partitions_since(spark, returns_path, returns["version"], "dt")
    if replaced is None or any(dt.date.fromisoformat(d) <= previous for d in replaced):
        return None
    feeds = {}
    for table in (attribution, reexposure):
        source = used.get(table.label)
        if source is None or source["table_id"] != table.table_id():
            return None
        feeds[table.label] = table.changes(day, source["version"])
        if feeds[table.label] is None:
            return None
    return previous, used, feeds


def kpi_order_figures(
    spark: SparkSession, cfg: OnetrackConfig, day: dt.date, inputs: KpiInputs
) -> tuple[OrderFigures, dict]:
    """The order figures as of D (materialized) and ``computed``: ``base`` (the run date they were
    computed from as changes, None: from all the window's orders), ``changed_orders`` and
    ``inputs`` (what :func:`write_kpi_figures` records)."""
    attribution, reexposure = attribution_table(spark, cfg), reexposure_table(spark, cfg)
    returns_path = cfg.table_path("silver", "returns")
    returns_version = None
    if table_exists(spark, returns_path):  # the version recorded is the version read
        returns_version = {
            "table_id": table_id(spark, returns_path),
            "version": table_version(spark, returns_path),
        }
        inputs = replace(inputs, returns=_version_of(spark, returns_path, returns_version["version"]))
    used = _used_inputs(attribution, reexposure, returns_version, day)
    changes = _changed_inputs(spark, cfg, day, attribution, reexposure)
    if changes is None:
        facts = cohort_order_facts(inputs, day, cfg).cache()
        figures = _materialized(order_figures(facts))
        facts.unpersist()
        return figures, {"base": None, "changed_orders": None, "inputs": used}

    previous, before, feeds = changes
    first_day, _ = restatement_window(day, cfg)
    attribution_feed = feeds[attribution.label]
    # the orders any version of a return landed in (B, D] names (its latest version as of D may
    # name another order than as of B)
    window_returns = inputs.returns.filter(
        F.col("dt").between(F.lit(first_day - dt.timedelta(days=LANDING_SLACK_DAYS)), F.lit(day))
    )
    landed = window_returns.filter(F.col("dt") > F.lit(previous)).select("return_id").distinct()
    returned = window_returns.join(F.broadcast(landed), on="return_id", how="left_semi").select("order_id")
    changed = materialize_small(
        attribution_feed.select("order_id")
        .unionByName(feeds[reexposure.label].select("order_id"))
        .unionByName(returned)
        .distinct()
    )
    old_inputs = replace(
        inputs,
        order_attribution=attribution.read_version(before[attribution.label]["version"], previous),
        order_reexposure=reexposure.read_version(before[reexposure.label]["version"], previous),
    )
    # the (day, buyer) pairs an order of the window moved into or out of, or changed in
    in_window = F.col("paid_date").between(F.lit(first_day), F.lit(day))
    pairs = materialize_small(attribution_feed.filter(in_window).select("paid_date", "user_id").distinct())

    def members(frame: DataFrame, as_of_date: dt.date) -> DataFrame:
        return (
            snapshot(frame, as_of_date)
            .filter(in_window)
            .join(pairs, on=["paid_date", "user_id"], how="left_semi")
            .select(F.col("paid_date").alias("dt"), "merchant_id", "user_id")
        )

    figures = order_figures_changes(
        _stored_figures(spark, cfg, previous),
        cohort_order_facts(old_inputs, previous, cfg, window_of=day, orders=changed),
        cohort_order_facts(inputs, day, cfg, orders=changed),
        members(old_inputs.order_attribution, previous),
        members(inputs.order_attribution, day),
        day,
        cfg,
    )
    return _materialized(figures), {"base": previous, "changed_orders": changed.count(), "inputs": used}


def _version_of(spark: SparkSession, path: str, version: int) -> DataFrame:
    return spark.read.format("delta").option("versionAsOf", version).load(path)


def _materialized(figures: OrderFigures) -> OrderFigures:
    """Each frame computed once (the four tables and the stored copy read them)."""
    return OrderFigures(
        figures.cube.localCheckpoint(eager=True),
        {level: frame.localCheckpoint(eager=True) for level, frame in figures.buyers.items()},
    )


def write_kpi_figures(
    spark: SparkSession, cfg: OnetrackConfig, day: dt.date, figures: OrderFigures, used: dict
) -> int:
    """Store the order figures as of D with the versions of the inputs they were computed from
    (written after the KPI tables: a run that fails before leaves the previous figures)."""
    settings = {"settings": kpi_figures_settings(cfg), "inputs": used}
    return replace_partition(
        _figures_frame(figures, day), cfg.table_path(*KPI_FIGURES_TABLE), {"as_of": day}, settings=settings
    )
