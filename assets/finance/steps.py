"""I/O steps of the finance assets: read silver, call the pure functions, write the Delta tables.

Each step takes the SparkSession, the config and the partition date D and returns a summary for
the asset's metadata. The ledger step is :func:`assets.finance.ledger.run_ledger_through`, the
settlement-files step :func:`assets.finance.settlement_files.publish_settlement_day`.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from assets.finance.allocation import allocate_ad_fees, allocation_changes
from assets.finance.asof import scope_start
from assets.finance.attribution import attribute_orders, attribution_changes
from assets.finance.ledger import (
    AD_FEE_ALLOCATION_TABLE,
    LEDGER_DAYS_TABLE,
    LEDGER_TABLE,
    ORDER_ATTRIBUTION_TABLE,
    allocation_table,
    attribution_table,
    read_ledger,
    read_silver,
)
from assets.finance.schemas import SILVER_SCHEMAS
from assets.storage import read_or_empty, table_exists
from pipelines.config import OnetrackConfig
from quality.runner import passed_with


def snapshot_settings(cfg: OnetrackConfig) -> dict:
    """The settings a finance snapshot depends on, recorded with it: a snapshot is only built on
    one written with the same (see :meth:`assets.snapshots.SnapshotTable.base_before`)."""
    return {
        "attribution_window_days": cfg.attribution_window_days,
        "ledger_lookback_days": cfg.ledger_lookback_days,
    }


def order_attribution_as_of(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> DataFrame:
    """The attribution as of D: the stored snapshot of D, else computed from all of silver (the
    same rows: both are functions of silver as of D)."""
    stored = attribution_table(spark, cfg).read(day)
    if stored is not None:
        return stored
    silver = read_silver(spark, cfg)
    return attribute_orders(silver["orders"], silver["traffic"], day, **_attribution_settings(cfg))


def _attribution_settings(cfg: OnetrackConfig) -> dict:
    return {"window_days": cfg.attribution_window_days, "lookback_days": cfg.ledger_lookback_days}


def run_order_attribution(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> dict:
    """Commit the snapshot as of D of ``finance/order_attribution``: from the latest earlier
    snapshot, as its changes (:func:`attribution_changes`; :meth:`SnapshotTable.write_changes`),
    else from scratch."""
    table = attribution_table(spark, cfg)
    settings = snapshot_settings(cfg)
    silver = read_silver(spark, cfg)
    base = table.base_before(day, settings)
    if base is None:
        frame = attribute_orders(silver["orders"], silver["traffic"], day, **_attribution_settings(cfg))
        written = table.write_full(frame, day, settings)
    else:
        upserts, removed = attribution_changes(
            silver["orders"], silver["traffic"], table.read(base), base, day, **_attribution_settings(cfg)
        )
        written = table.write_changes(
            base, day, upserts, removed, settings, drop_below=scope_start(day, cfg.ledger_lookback_days)
        )
    return {"table_path": table.path, "delta_version": written["version"], "base": base, **written}


def ad_fee_allocation_as_of(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> DataFrame:
    """The allocation as of D: the stored snapshot of D, else computed from the attribution as of
    D and silver ad spend (the same rows, as for :func:`order_attribution_as_of`)."""
    stored = allocation_table(spark, cfg).read(day)
    if stored is not None:
        return stored
    ad_spend = read_or_empty(spark, cfg.table_path("silver", "ad_spend"), SILVER_SCHEMAS["ad_spend"])
    return allocate_ad_fees(
        order_attribution_as_of(spark, cfg, day), ad_spend, day, lookback_days=cfg.ledger_lookback_days
    )


def run_ad_fee_allocation(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> dict:
    """Commit the snapshot as of D of ``finance/ad_fee_allocation``: from the latest earlier
    snapshot, as the rows of the campaign-days allocated again and the keys they no longer have
    (:func:`allocation_changes`; :meth:`SnapshotTable.write_changes`), else from scratch.

    Uses the attribution snapshot of D written upstream; computes it from silver if there is none
    (the result is the same: both are functions of silver as of D). The changed campaign-days are
    found from the change data feed of the attribution's commit of D when it was committed as the
    changes from the attribution snapshot of the allocation's base date, else by comparing the two
    attribution snapshots.
    """
    table = allocation_table(spark, cfg)
    settings = snapshot_settings(cfg)
    ad_spend = read_or_empty(spark, cfg.table_path("silver", "ad_spend"), SILVER_SCHEMAS["ad_spend"])
    attribution = order_attribution_as_of(spark, cfg, day)
    base = table.base_before(day, settings)
    attributions = attribution_table(spark, cfg)
    base_attribution = None if base is None else attributions.read(base)
    if base_attribution is None:
        frame = allocate_ad_fees(attribution, ad_spend, day, lookback_days=cfg.ledger_lookback_days)
        written = table.write_full(frame, day, settings)
        base = None
    else:
        upserts, removed = allocation_changes(
            attribution,
            base_attribution,
            table.read(base),
            base,
            ad_spend,
            day,
            lookback_days=cfg.ledger_lookback_days,
            # the attribution's own changes from that snapshot to D, when D was committed as them
            changed_rows=attributions.changes(day, attributions.snapshots()[base].version),
        )
        written = table.write_changes(
            base, day, upserts, removed, settings, drop_below=scope_start(day, cfg.ledger_lookback_days)
        )
    return {"table_path": table.path, "delta_version": written["version"], "base": base, **written}


def ledger_through(spark: SparkSession, cfg: OnetrackConfig, day: dt.date) -> DataFrame:
    """The ledger as it stands for D: every entry settled on or before D."""
    return read_ledger(spark, cfg).filter(F.col("settlement_date") <= F.lit(day))


def _computed_stamp(spark: SparkSession, cfg: OnetrackConfig, through: dt.date) -> str | None:
    """When the settlement dates up to ``through`` were last (re)computed (``finance/ledger_days``):
    it moves whenever one of them is written again or an earlier date is added."""
    path = cfg.table_path(*LEDGER_DAYS_TABLE)
    if not table_exists(spark, path):
        return None
    stamp = (
        spark.read.format("delta")
        .load(path)
        .filter(F.col("settlement_date") <= F.lit(through))
        .agg(F.max("computed_at"), F.count(F.lit(1)))
        .first()
    )
    return None if stamp[0] is None else f"{stamp[0].isoformat()}/{stamp[1]}"


def ledger_check_frame(
    spark: SparkSession, cfg: OnetrackConfig, day: dt.date, suite_names: list[str], validations_root: str
) -> tuple[DataFrame, dict]:
    """What the ledger's checks validate for D, and what to record with them
    (``record`` of :func:`quality.checks.check_results`).

    The rules are per entry, per return (settled once, reversed once) and per order (the cap);
    every entry of a return is one of its order's. Settled entries never change once a later date
    builds on them (:class:`LedgerDriftError`). So when every suite passed on D - 1 with the
    settlement dates up to it as they stand now (same ``finance/ledger_days`` stamp), the ledger
    through D is valid iff the entries of the orders that have an entry settled on D (all their
    entries) are: only those are validated. Otherwise (first validation, a failure, a date written
    again since) the whole ledger through D is. The check's cost then follows the day's entries,
    not the ledger's history.
    """
    ledger = ledger_through(spark, cfg, day)
    record = {"ledger_days_stamp": _computed_stamp(spark, cfg, day)}
    before = day - dt.timedelta(days=1)
    stamp_before = _computed_stamp(spark, cfg, before)
    if stamp_before is not None and passed_with(
        validations_root, suite_names, before.isoformat(), ledger_days_stamp=stamp_before
    ):
        orders_of_day = ledger.filter(F.col("settlement_date") == F.lit(day)).select("order_id").distinct()
        record["validated"] = (
            f"every entry of the orders with an entry settled on {day.isoformat()} (the ledger through "
            f"{before.isoformat()} passed)"
        )
        return ledger.join(orders_of_day, on="order_id", how="left_semi"), record
    record["validated"] = f"the whole ledger through {day.isoformat()}"
    return ledger, record


__all__ = [
    "LEDGER_TABLE",
    "ORDER_ATTRIBUTION_TABLE",
    "AD_FEE_ALLOCATION_TABLE",
    "run_order_attribution",
    "run_ad_fee_allocation",
    "ad_fee_allocation_as_of",
    "ledger_through",
    "ledger_check_frame",
]
