"""I/O step of ``gold/order_reexposure``: a versioned snapshot like ``finance/order_attribution``.

The run for D commits the snapshot as of D as the changes from the latest earlier one
(:func:`assets.kpi.reexposure.order_reexposure_changes`), driven by the keys the attribution's
own commit for D changed (its change data feed); without a usable earlier snapshot, or when the
attribution as of D was not committed as changes to the version that snapshot was computed from,
the whole snapshot is computed from scratch. Both give the same rows (tests/kpi/test_reexposure.py).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession

from assets.finance.asof import scope_start
from assets.finance.ledger import attribution_table, read_silver
from assets.finance.steps import order_attribution_as_of
from assets.kpi.reexposure import ORDER_REEXPOSURE_SCHEMA, compute_order_reexposure, order_reexposure_changes
from assets.snapshots import SnapshotTable
from pipelines.config import OnetrackConfig

ORDER_REEXPOSURE_TABLE = ("gold", "order_reexposure")


def reexposure_table(spark: SparkSession, cfg: OnetrackConfig) -> SnapshotTable:
    """``gold/order_reexposure``: one row per order of the attribution snapshot, stored
    partitioned by ``paid_date`` (the same scope as the attribution's)."""
    return SnapshotTable(
        spark, cfg, ORDER_REEXPOSURE_TABLE, ORDER_REEXPOSURE_SCHEMA, key="order_id", partition_by="paid_date"
    )


def reexposure_settings(cfg: OnetrackConfig) -> dict:
    """The settings the snapshot depends on: a snapshot is only built on one with the same."""
    return {
        "reexposure_window_days": cfg.reexposure_window_days,
        "ledger_lookback_days": cfg.ledger_lookback_days,
        "attribution_window_days": cfg.attribution_window_days,
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
