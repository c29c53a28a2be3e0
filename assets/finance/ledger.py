"""SPEC §6: the ad-fee refund ledger, one settlement date at a time.

The entries of settlement date D are a deterministic function of the silver inputs landed by D
(``dt <= D``) and of the ledger entries settled before D. :func:`run_ledger_through` therefore
computes every earlier settlement date that is missing (from ``partition_start``) in date order
before D, so the ledger does not depend on the order partitions are run in.

Refund arithmetic per order (in whole fen): with ``cap = max(0, fee - prior)`` where ``prior`` is the
sum of the order's ledger amounts before the new refunds of D (earlier dates and the reversals of
D), the sequential rule ``refund_i = min(x_i, remaining)``, ``remaining -= refund_i`` over the
order's new refunds in ``(refunded_at, return_id)`` order equals
``min(C_i, cap) - min(C_{i-1}, cap)`` with ``C_i`` the running sum of the ``x``: by induction the
refunds so far add up to ``min(C_{i-1}, cap)``, so ``remaining = cap - min(C_{i-1}, cap)``; if
``C_{i-1} >= cap`` both sides are 0, otherwise ``min(x_i, cap - C_{i-1}) = min(C_i, cap) - C_{i-1}``
(all ``x_i >= 0``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from assets.finance.allocation import allocate_ad_fees, order_fees
from assets.finance.asof import FEN, days, from_fen, latest_returns, to_fen
from assets.finance.attribution import attribute_orders
from assets.finance.schemas import (
    ENTRY_REFUND,
    ENTRY_REVERSAL,
    LEDGER_COLUMNS,
    LEDGER_DAYS_SCHEMA,
    LEDGER_SCHEMA,
    SILVER_SCHEMAS,
)
from assets.storage import read_or_empty, replace_partition, table_exists, table_version
from pipelines.config import OnetrackConfig

LEDGER_TABLE = ("finance", "ad_fee_refund_ledger")
LEDGER_DAYS_TABLE = ("finance", "ledger_days")
SILVER_INPUTS = ("orders", "returns", "ad_spend", "traffic")


class LedgerDriftError(RuntimeError):
    """Recomputing a settled day gives other entries while later days already build on it."""


def _ledger_select(df: DataFrame) -> DataFrame:
    return df.select([F.col(f.name).cast(f.dataType) for f in LEDGER_SCHEMA.fields])


def eligible_returns(
    returns_as_of: DataFrame,
    ad_orders: DataFrame,
    *,
    refund_window_days: int,
    eligible_return_types: tuple[str, ...],
) -> DataFrame:
    """Returns eligible for an ad-fee refund (SPEC §6), joined with their order and fee.

    ``ad_orders``: attributed-to-``ad`` orders with ``allocated_ad_fee``.
    """
    orders = ad_orders.select(
        "order_id", "merchant_id", "campaign_id", "paid_at", "order_amount", "pay_amount", "allocated_ad_fee"
    )
    return (
        returns_as_of.select("return_id", "order_id", "return_type", "status", "refunded_at", "refund_amount")
        .join(orders, on="order_id", how="inner")
        .filter(
            (F.col("status") == F.lit("refunded"))
            & F.col("return_type").isin(*eligible_return_types)
            & F.col("refunded_at").isNotNull()
            & (F.col("refunded_at") <= F.col("paid_at") + days(refund_window_days))
        )
    )


def reversal_entries(prior_ledger: DataFrame, returns_as_of: DataFrame, settlement_date: dt.date) -> DataFrame:
    """Settled, not yet reversed returns whose latest status as of D is no longer ``refunded``."""
    settled = prior_ledger.filter(F.col("entry_type") == F.lit(ENTRY_REFUND))
    reversed_ids = prior_ledger.filter(F.col("entry_type") == F.lit(ENTRY_REVERSAL)).select("return_id")
    status_now = returns_as_of.select("return_id", F.col("status").alias("_status_now"))
    return _ledger_select(
        settled.join(reversed_ids, on="return_id", how="left_anti")
        .join(status_now, on="return_id", how="inner")
        .filter(F.col("_status_now") != F.lit("refunded"))
        .withColumn("settlement_date", F.lit(settlement_date).cast("date"))
        .withColumn("entry_type", F.lit(ENTRY_REVERSAL))
        .withColumn("ad_fee_refund", -F.col("ad_fee_refund"))
    )


def refund_entries(
    eligible: DataFrame,
    prior_ledger: DataFrame,
    reversals: DataFrame,
    settlement_date: dt.date,
) -> DataFrame:
    """New refund rows of D: eligible returns never in the ledger, capped per order."""
    new = eligible.join(prior_ledger.select("return_id").distinct(), on="return_id", how="left_anti")
    already = (
        prior_ledger.select("order_id", "ad_fee_refund")
        .unionByName(reversals.select("order_id", "ad_fee_refund"))
        .groupBy("order_id")
        .agg(F.sum(to_fen(F.col("ad_fee_refund"))).cast(FEN).alias("_prior_fen"))
    )
    fee_fen = to_fen(F.coalesce(F.col("allocated_ad_fee"), F.lit(0)))
    refund_fen, pay_fen = to_fen(F.col("refund_amount")), to_fen(F.col("pay_amount"))
    # round_half_up(fee * refund / pay) in fen, for refund < pay: floor((2*fee*refund + pay) / (2*pay)).
    prorated = F.expr("(2 * _fee_fen * _refund_fen + _pay_fen) div (2 * _pay_fen)").cast(FEN)
    in_order = (
        Window.partitionBy("order_id")
        .orderBy(F.col("refunded_at").asc(), F.col("return_id").asc())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    return _ledger_select(
        new.join(already, on="order_id", how="left")
        .withColumn("_fee_fen", fee_fen)
        .withColumn("_refund_fen", refund_fen)
        .withColumn("_pay_fen", pay_fen)
        .withColumn(
            "_x", F.when(F.col("_refund_fen") >= F.col("_pay_fen"), F.col("_fee_fen")).otherwise(prorated)
        )
        .withColumn(
            "_cap",
            F.greatest(F.lit(0).cast(FEN), F.col("_fee_fen") - F.coalesce(F.col("_prior_fen"), F.lit(0))),
        )
        .withColumn("_cum", F.sum("_x").over(in_order).cast(FEN))
        .withColumn(
            "_refund",
            F.least(F.col("_cum"), F.col("_cap")) - F.least(F.col("_cum") - F.col("_x"), F.col("_cap")),
        )
        .withColumn("settlement_date", F.lit(settlement_date).cast("date"))
        .withColumn("entry_type", F.lit(ENTRY_REFUND))
        .withColumn("ad_fee_refund", from_fen(F.col("_refund")))
    )


def ledger_entries_for_day(
    settlement_date: dt.date,
    *,
    orders: DataFrame,
    returns: DataFrame,
    traffic: DataFrame,
    ad_spend: DataFrame,
    prior_ledger: DataFrame,
    cfg: OnetrackConfig,
) -> DataFrame:
    """All ledger entries of ``settlement_date`` D (reversals and refunds), SPEC §6 columns.

    Inputs are the silver tables (any landing dates: only ``dt <= D`` is read) and the ledger
    (only ``settlement_date < D`` is read). Attribution and fees are those as of D.
    """
    D = settlement_date
    prior = prior_ledger.filter(F.col("settlement_date") < F.lit(D))
    attribution = attribute_orders(
        orders,
        traffic,
        D,
        window_days=cfg.attribution_window_days,
        lookback_days=cfg.ledger_lookback_days,
    )
    fees = order_fees(allocate_ad_fees(attribution, ad_spend, D, lookback_days=cfg.ledger_lookback_days))
    ad_orders = attribution.filter(F.col("attributed_pool") == F.lit("ad")).join(fees, on="order_id", how="left")
    returns_now = latest_returns(returns, D)
    reversals = reversal_entries(prior, returns_now, D)
    eligible = eligible_returns(
        returns_now,
        ad_orders,
        refund_window_days=cfg.refund_window_days,
        eligible_return_types=tuple(cfg.eligible_return_types),
    )
    refunds = refund_entries(eligible, prior, reversals, D)
    return reversals.unionByName(refunds).select(*LEDGER_COLUMNS)


# ---------------------------------------------------------------------------------------------
# I/O: the orchestrator used by the Dagster asset.


def _date_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def read_silver(spark: SparkSession, cfg: OnetrackConfig) -> dict[str, DataFrame]:
    return {
        name: read_or_empty(spark, cfg.table_path("silver", name), SILVER_SCHEMAS[name]) for name in SILVER_INPUTS
    }


def computed_days(spark: SparkSession, cfg: OnetrackConfig) -> set[dt.date]:
    path = cfg.table_path(*LEDGER_DAYS_TABLE)
    if not table_exists(spark, path):
        return set()
    return {row[0] for row in spark.read.format("delta").load(path).select("settlement_date").collect()}


def read_ledger(spark: SparkSession, cfg: OnetrackConfig) -> DataFrame:
    return read_or_empty(spark, cfg.table_path(*LEDGER_TABLE), LEDGER_SCHEMA)


def _same_rows(a: DataFrame, b: DataFrame) -> bool:
    return a.exceptAll(b).isEmpty() and b.exceptAll(a).isEmpty()


def run_ledger_through(
    spark: SparkSession,
    cfg: OnetrackConfig,
    settlement_date: dt.date,
    *,
    silver: Mapping[str, DataFrame] | None = None,
) -> dict:
    """Bring the ledger up to settlement date D and (re)compute D.

    Every settlement date from ``cfg.partition_start`` before D that has not been computed yet is
    computed first, in date order; then D. A day already in the ledger is recomputed and compared:
    identical entries are left as they are (no write); different entries replace the day only if
    no later day was computed on top of it, otherwise :class:`LedgerDriftError` is raised (ledger
    rows never change once later days depend on them).

    ``silver`` overrides the silver tables read from ``cfg`` (name -> DataFrame).
    Returns a summary: ``settlement_date, entries, refunds, reversals, ad_fee_refund,
    days_computed, rewritten, ledger_version``.
    """
    D = settlement_date
    inputs = dict(silver) if silver is not None else read_silver(spark, cfg)
    ledger_path = cfg.table_path(*LEDGER_TABLE)
    days_path = cfg.table_path(*LEDGER_DAYS_TABLE)
    done = computed_days(spark, cfg)
    start = dt.date.fromisoformat(cfg.partition_start)
    todo = [d for d in _date_range(start, D - dt.timedelta(days=1)) if d not in done] + [D]

    computed: list[str] = []
    rewritten = False
    entries = None
    for day in todo:
        prior = read_ledger(spark, cfg).filter(F.col("settlement_date") < F.lit(day))
        entries = ledger_entries_for_day(
            day,
            orders=inputs["orders"],
            returns=inputs["returns"],
            traffic=inputs["traffic"],
            ad_spend=inputs["ad_spend"],
            prior_ledger=prior,
            cfg=cfg,
        ).localCheckpoint(eager=True)
        if day in done:
            stored = read_ledger(spark, cfg).filter(F.col("settlement_date") == F.lit(day))
            if _same_rows(entries, stored):
                continue
            later = sorted(d for d in done if d > day)
            if later:
                raise LedgerDriftError(
                    f"Recomputing settlement date {day} gives other ledger entries than those stored, "
                    f"and later settlement dates ({later[0]} .. {later[-1]}) build on them. Ledger rows "
                    "never change once settled; investigate the silver inputs of that date."
                )
            rewritten = True
        count = entries.count()
        replace_partition(entries, ledger_path, {"settlement_date": day})
        marker = spark.createDataFrame([(day, count)], "settlement_date date, entries long").withColumn(
            "computed_at", F.current_timestamp()
        )
        replace_partition(
            marker.select(*LEDGER_DAYS_SCHEMA.fieldNames()), days_path, {"settlement_date": day}
        )
        computed.append(day.isoformat())

    day_rows = read_ledger(spark, cfg).filter(F.col("settlement_date") == F.lit(D))
    summary = day_rows.agg(
        F.count(F.lit(1)).alias("entries"),
        F.sum(F.when(F.col("entry_type") == ENTRY_REFUND, 1).otherwise(0)).alias("refunds"),
        F.sum(F.when(F.col("entry_type") == ENTRY_REVERSAL, 1).otherwise(0)).alias("reversals"),
        F.sum("ad_fee_refund").alias("ad_fee_refund"),
    ).first()
    return {
        "settlement_date": D.isoformat(),
        "entries": int(summary["entries"]),
        "refunds": int(summary["refunds"] or 0),
        "reversals": int(summary["reversals"] or 0),
        "ad_fee_refund": str(summary["ad_fee_refund"] if summary["ad_fee_refund"] is not None else "0.00"),
        "days_computed": computed,
        "rewritten": rewritten,
        "ledger_version": table_version(spark, ledger_path) if table_exists(spark, ledger_path) else None,
    }
