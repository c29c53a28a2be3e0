"""SPEC §8: the gold KPI tables, with snapshot semantics.

A run for ``D`` computes, as of ``D``, one row per key for every business day ``d`` in
``[D - (restatement_window_days - 1), D]`` and tags it ``as_of = D``. The cohort of ``d`` is the
paid orders whose ``paid_date`` is ``d`` (``finance/order_attribution``, snapshot ``as_of = D``).
A key has a row when it has at least one order, spend or ledger row in that window.

Money is ``DECIMAL(18,2)``; ratios are ``DECIMAL(18,6)`` rounded half-up and null when the divisor
is 0. Every function here is pure: DataFrames in, DataFrame out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DecimalType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from assets.kpi.inputs import ad_spend_as_of, ledger_as_of, returns_as_of, snapshot
from assets.storage import LANDING_SLACK_DAYS, materialize_small
from pipelines.config import OnetrackConfig

MONEY = DecimalType(18, 2)
RATIO = DecimalType(18, 6)
_COUNT_AS_DECIMAL = DecimalType(20, 0)
_FEN = DecimalType(20, 0)

# Column contracts of the gold tables (SPEC §8 names, in SPEC order; key first, as_of last).
KPI_METRIC_COLUMNS = (
    "orders",
    "buyers",
    "payment_gmv",
    "gmv_ad",
    "gmv_organic",
    "gmv_direct",
    "platform_subsidy",
    "cross_pool_subsidy",
    "ad_spend",
    "unattributed_spend",
    "roi",
    "returned_orders",
    "return_rate",
    "refund_amount",
    "settled_gmv",
    "settlement_rate",
    "settlement_final",
    "ad_fee_refund",
    "net_roi",
)
KPI_DAILY_COLUMNS = ("dt", *KPI_METRIC_COLUMNS, "as_of")
KPI_MERCHANT_DAILY_COLUMNS = ("dt", "merchant_id", *KPI_METRIC_COLUMNS, "as_of")
KPI_CAMPAIGN_DAILY_COLUMNS = (
    "dt",
    "campaign_id",
    "merchant_id",
    "impressions",
    "clicks",
    "ad_spend",
    "attributed_orders",
    "gmv_ad",
    "returned_orders",
    "allocated_ad_fee",
    "roi",
    "return_rate",
    "ad_fee_refund",
    "as_of",
)
RETURN_ATTRIBUTION_DAILY_COLUMNS = (
    "dt",
    "attributed_pool",
    "reexposure",
    "orders",
    "returned_orders",
    "return_rate",
    "refund_amount",
    "found_cheaper_returns",
    "as_of",
)

# table name -> key columns (without as_of); used by writers, checks and the serving SQL.
KPI_TABLE_KEYS = {
    "kpi_daily": ("dt",),
    "kpi_merchant_daily": ("dt", "merchant_id"),
    "kpi_campaign_daily": ("dt", "campaign_id"),
    "return_attribution_daily": ("dt", "attributed_pool", "reexposure"),
}
KPI_TABLE_COLUMNS = {
    "kpi_daily": KPI_DAILY_COLUMNS,
    "kpi_merchant_daily": KPI_MERCHANT_DAILY_COLUMNS,
    "kpi_campaign_daily": KPI_CAMPAIGN_DAILY_COLUMNS,
    "return_attribution_daily": RETURN_ATTRIBUTION_DAILY_COLUMNS,
}


_COUNT_COLUMNS = {
    "orders",
    "buyers",
    "returned_orders",
    "impressions",
    "clicks",
    "attributed_orders",
    "found_cheaper_returns",
}
_MONEY_COLUMNS = {
    "payment_gmv",
    "gmv_ad",
    "gmv_organic",
    "gmv_direct",
    "platform_subsidy",
    "cross_pool_subsidy",
    "ad_spend",
    "unattributed_spend",
    "refund_amount",
    "settled_gmv",
    "ad_fee_refund",
    "allocated_ad_fee",
}
_RATIO_COLUMNS = {"roi", "return_rate", "settlement_rate", "net_roi"}


def _column_type(name: str):
    if name in ("dt", "as_of"):
        return DateType()
    if name in _COUNT_COLUMNS:
        return LongType()
    if name in _MONEY_COLUMNS:
        return MONEY
    if name in _RATIO_COLUMNS:
        return RATIO
    if name == "settlement_final":
        return BooleanType()
    return StringType()


def table_schema(table: str) -> StructType:
    """The Spark schema of a gold KPI table (column order of KPI_TABLE_COLUMNS)."""
    return StructType([StructField(c, _column_type(c)) for c in KPI_TABLE_COLUMNS[table]])


@dataclass(frozen=True)
class KpiInputs:
    """Whole tables; the KPI functions apply the as-of rule for ``D`` themselves."""

    order_attribution: DataFrame  # finance/order_attribution (snapshot as_of = D is used)
    ad_fee_allocation: DataFrame  # finance/ad_fee_allocation (snapshot as_of = D is used)
    ad_fee_refund_ledger: DataFrame  # finance/ad_fee_refund_ledger (settlement_date <= D is used)
    returns: DataFrame  # silver/returns (dt <= D, latest version per return_id)
    ad_spend: DataFrame  # silver/ad_spend (dt <= D, latest restatement per campaign-hour)
    order_reexposure: DataFrame  # gold/order_reexposure (snapshot as_of = D is used)


# --- small helpers -------------------------------------------------------------------------------


def restatement_window(as_of_date: dt.date, cfg: OnetrackConfig) -> tuple[dt.date, dt.date]:
    """``[D - (restatement_window_days - 1), D]``: the business days a run for ``D`` rewrites."""
    return as_of_date - dt.timedelta(days=cfg.restatement_window_days - 1), as_of_date


def _in_window(column: str, as_of_date: dt.date, cfg: OnetrackConfig) -> Column:
    first_day, last_day = restatement_window(as_of_date, cfg)
    return F.col(column).between(F.lit(first_day), F.lit(last_day))


def money_sum(column: Column) -> Column:
    """Σ of a money column, 0.00 over no rows."""
    return F.coalesce(F.sum(column), F.lit(0)).cast(MONEY)


def money_total(column: Column) -> Column:
    """:func:`money_sum`, never null in the schema either (0.00 over no rows or only nulls)."""
    return F.coalesce(F.sum(column).cast(MONEY), F.lit(0).cast(MONEY))


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator as DECIMAL(18,6) rounded half-up; null when the divisor is 0 or null."""
    return F.round(F.try_divide(numerator, denominator), 6).cast(RATIO)


def count_ratio(numerator: Column, denominator: Column) -> Column:
    return ratio(numerator.cast(_COUNT_AS_DECIMAL), denominator.cast(_COUNT_AS_DECIMAL))


def settled_amount(order_amount: Column, pay_amount: Column, refunded_in_window: Column) -> Column:
    """round_half_up(order_amount × (1 − min(1, refunded_in_window / pay_amount)), 2), exactly.

    Worked in fen so that no intermediate rounding happens: with a = order_amount, p = pay_amount,
    r = refunded_in_window, k = p − min(p, r) (all in fen), the result is a·k/p rounded half-up,
    i.e. floor((2·a·k + p) / (2·p)); the floor is taken as (n − n mod m) / m, an exact division.

    Nothing refunded (most orders) gives exactly ``order_amount`` (k = p): returned as it is, so the
    wide-decimal arithmetic, the costliest column of the KPI facts, runs only for refunded orders
    (and an order paid wholly by subsidy, p = 0, with nothing refunded keeps its amount).
    """
    a = (order_amount * 100).cast(_FEN)
    p = (pay_amount * 100).cast(_FEN)
    r = (refunded_in_window * 100).cast(_FEN)
    kept = p - F.least(p, r)
    numerator = a * kept * 2 + p
    divisor = p * 2
    fen = (numerator - numerator % divisor) / divisor
    return F.when(refunded_in_window == 0, order_amount.cast(MONEY)).otherwise((fen / 100).cast(MONEY))


# --- per-order facts of the cohorts in the window ------------------------------------------------


def window_orders(inputs: KpiInputs, as_of_date: dt.date, cfg: OnetrackConfig) -> DataFrame:
    """The paid orders of the window's cohorts: the attribution snapshot as of D, paid in the window."""
    return snapshot(inputs.order_attribution, as_of_date).filter(_in_window("paid_date", as_of_date, cfg))


def cohort_order_facts(inputs: KpiInputs, as_of_date: dt.date, cfg: OnetrackConfig) -> DataFrame:
    """One row per paid order with ``paid_date`` in the window, everything the KPIs sum over."""
    if cfg.ledger_lookback_days < cfg.restatement_window_days - 1:
        # finance/order_attribution only holds orders paid in [D - ledger_lookback_days, D]
        raise ValueError(
            f"ledger_lookback_days ({cfg.ledger_lookback_days}) must cover the restatement window "
            f"({cfg.restatement_window_days} days): older cohorts would have no orders"
        )
    orders = window_orders(inputs, as_of_date, cfg)

    # The window's orders are the big side (30 days of them): the returns, their figures per order
    # and the re-exposed orders are materialized and broadcast when small, so the orders are
    # scanned once and not shuffled. (An order without a re-exposure row is "none" below, so only
    # the others are joined.)
    settlement_end = F.col("paid_at") + F.make_dt_interval(days=F.lit(cfg.settlement_window_days))
    is_refunded = F.col("status") == "refunded"
    returns = materialize_small(
        returns_as_of(inputs.returns, as_of_date, restatement_window(as_of_date, cfg)[0]).select(
            "return_id", "order_id", "status", "reason_code", "refunded_at", "refund_amount"
        )
    )
    return_figures = (
        orders.select("order_id", "paid_at")
        .join(returns, on="order_id", how="inner")
        .groupBy("order_id")
        .agg(
            F.max(is_refunded).alias("is_returned"),
            F.sum(F.when(is_refunded, F.col("refund_amount"))).alias("refund_amount"),
            F.sum(
                F.when(is_refunded & (F.col("refunded_at") <= settlement_end), F.col("refund_amount"))
            ).alias("refunded_in_window"),
            F.count(F.when(is_refunded & (F.col("reason_code") == "found_cheaper"), F.lit(1))).alias(
                "found_cheaper_returns"
            ),
        )
    )

    return_figures = materialize_small(return_figures)
    reexposure = materialize_small(
        snapshot(inputs.order_reexposure, as_of_date)
        # only the window's orders are joined: its paid days are the files read (the stored
        # snapshot is partitioned by paid_date and spans the 60-day scope)
        .filter(_in_window("paid_date", as_of_date, cfg) & (F.col("reexposure") != F.lit("none")))
        .select("order_id", "reexposure")
    )

    voucher_crosses_pool = F.col("voucher_pool").isNotNull() & (
        F.col("voucher_pool") != F.col("attributed_pool")
    )
    return (
        orders.join(return_figures, on="order_id", how="left")
        .join(reexposure, on="order_id", how="left")
        .select(
            F.col("paid_date").alias("dt"),
            "order_id",
            "user_id",
            "merchant_id",
            "attributed_pool",
            "campaign_id",
            F.col("order_amount").cast(MONEY).alias("order_amount"),
            F.col("pay_amount").cast(MONEY).alias("pay_amount"),
            F.col("platform_subsidy").cast(MONEY).alias("platform_subsidy"),
            F.when(voucher_crosses_pool, F.col("platform_subsidy"))
            .otherwise(F.lit(0))
            .cast(MONEY)
            .alias("cross_pool_subsidy"),
            F.coalesce(F.col("is_returned"), F.lit(False)).alias("is_returned"),
            F.coalesce(F.col("refund_amount"), F.lit(0)).cast(MONEY).alias("refund_amount"),
            F.coalesce(F.col("refunded_in_window"), F.lit(0)).cast(MONEY).alias("refunded_in_window"),
            F.coalesce(F.col("found_cheaper_returns"), F.lit(0)).cast("long").alias("found_cheaper_returns"),
            F.coalesce(F.col("reexposure"), F.lit("none")).alias("reexposure"),
        )
        .withColumn(
            "settled_gmv",
            settled_amount(F.col("order_amount"), F.col("pay_amount"), F.col("refunded_in_window")),
        )
    )


# --- the order side, summed: OrderFigures ---------------------------------------------------------

# The finest key any KPI table groups the orders by; every order figure but ``buyers`` is a sum
# over it, so the four tables are grouped from these sums (the order cube), not from the orders.
ORDER_CUBE_KEYS = ("dt", "merchant_id", "campaign_id", "attributed_pool", "reexposure")
CUBE_MONEY = ("order_amount", "platform_subsidy", "cross_pool_subsidy", "refund_amount", "settled_gmv")


@dataclass(frozen=True)
class OrderFigures:
    """Everything the KPI tables take from the window's orders."""

    cube: DataFrame  # ORDER_CUBE_KEYS: orders, CUBE_MONEY sums, returned_orders, found_cheaper_returns
    buyers: dict[str, DataFrame]  # "day": dt, buyers; "merchant": dt, merchant_id, buyers


def order_cube(facts: DataFrame) -> DataFrame:
    """:func:`cohort_order_facts` summed per ``ORDER_CUBE_KEYS`` (a null key is a key)."""
    return facts.groupBy(*ORDER_CUBE_KEYS).agg(
        F.count(F.lit(1)).alias("orders"),
        *(money_sum(F.col(c)).alias(c) for c in CUBE_MONEY),
        F.count(F.when(F.col("is_returned"), F.lit(1))).alias("returned_orders"),
        F.coalesce(F.sum("found_cheaper_returns"), F.lit(0)).cast("long").alias("found_cheaper_returns"),
    )


def buyer_counts(orders: DataFrame) -> dict[str, DataFrame]:
    """Distinct non-null ``user_id`` per ``dt`` ("day") and per ``(dt, merchant_id)``
    ("merchant") of the window's orders (rows with ``paid_date``, ``merchant_id``, ``user_id``).
    From the narrow (day, merchant, user) triples alone, made distinct once: in one aggregate
    with the money sums, Spark would shuffle every row carrying a partial of each sum."""
    triples = (
        orders.select(F.col("paid_date").alias("dt"), "merchant_id", "user_id")
        .filter(F.col("user_id").isNotNull())
        .distinct()
        .localCheckpoint(eager=True)
    )
    return {
        "merchant": triples.groupBy("dt", "merchant_id").agg(F.count(F.lit(1)).alias("buyers")),
        "day": triples.select("dt", "user_id")
        .distinct()
        .groupBy("dt")
        .agg(F.count(F.lit(1)).alias("buyers")),
    }


def order_figures(inputs: KpiInputs, as_of_date: dt.date, cfg: OnetrackConfig) -> OrderFigures:
    """The order figures of the window, each materialized once (the four tables read them): the
    cube in one pass over the facts (not cached: 30 days of wide rows), the buyers from the
    attribution's narrow columns."""
    return OrderFigures(
        order_cube(cohort_order_facts(inputs, as_of_date, cfg)).localCheckpoint(eager=True),
        {
            level: frame.localCheckpoint(eager=True)
            for level, frame in buyer_counts(window_orders(inputs, as_of_date, cfg)).items()
        },
    )


def _spend_rows(inputs: KpiInputs, as_of_date: dt.date, cfg: OnetrackConfig) -> DataFrame:
    """Restated hourly spend of the window; ``merchant_id`` is the advertiser."""
    return (
        ad_spend_as_of(inputs.ad_spend, as_of_date, restatement_window(as_of_date, cfg)[0])
        .filter(_in_window("stat_date", as_of_date, cfg))
        .select(
            F.col("stat_date").alias("dt"),
            "campaign_id",
            F.col("advertiser_id").alias("merchant_id"),
            "impressions",
            "clicks",
            "spend",
        )
    )


def _allocation_rows(inputs: KpiInputs, as_of_date: dt.date, cfg: OnetrackConfig) -> DataFrame:
    return (
        snapshot(inputs.ad_fee_allocation, as_of_date)
        .filter(_in_window("stat_date", as_of_date, cfg))
        .select(
            F.col("stat_date").alias("dt"),
            "campaign_id",
            F.col("advertiser_id").alias("merchant_id"),
            "order_id",
            "allocated_ad_fee",
            "unattributed_spend",
        )
    )


def _ledger_rows(inputs: KpiInputs, as_of_date: dt.date, cfg: OnetrackConfig) -> DataFrame:
    """Ledger entries settled by ``D``, keyed by the business day their order was paid.

    An entry is settled on a run date whose attribution holds its order, which landed at most a
    day before it was paid (the landing rule): the settlement dates before the window's first day
    less a day are not read (the ledger's history grows; the window does not)."""
    first_day = restatement_window(as_of_date, cfg)[0] - dt.timedelta(days=LANDING_SLACK_DAYS)
    return (
        ledger_as_of(inputs.ad_fee_refund_ledger, as_of_date)
        .filter(F.col("settlement_date") >= F.lit(first_day))
        .withColumn("dt", F.to_date(F.col("paid_at")))
        .filter(_in_window("dt", as_of_date, cfg))
        .select("dt", "merchant_id", "campaign_id", "order_id", "ad_fee_refund")
    )


@dataclass(frozen=True)
class SideFigures:
    """Spend, allocation and ledger of the window, summed to the finest key any KPI table uses.

    Every KPI over them is a sum (or a max of ``merchant_id``) per coarser key, so summing first
    gives the same figures, and the three tables share one pass over the inputs (the restatement
    ranking of the hourly spend is the costly part) instead of one each.
    """

    spend: DataFrame  # dt, campaign_id, merchant_id (advertiser): impressions, clicks, spend
    allocation: DataFrame  # dt, campaign_id, merchant_id, unattributed: allocated_ad_fee, unattributed_spend
    ledger: DataFrame  # dt, merchant_id, campaign_id: ad_fee_refund


def side_figures(inputs: KpiInputs, as_of_date: dt.date, cfg: OnetrackConfig) -> SideFigures:
    spend = (
        _spend_rows(inputs, as_of_date, cfg)
        .groupBy("dt", "campaign_id", "merchant_id")
        .agg(
            F.sum("impressions").alias("impressions"),
            F.sum("clicks").alias("clicks"),
            F.sum("spend").alias("spend"),
        )
    )
    allocation = (
        _allocation_rows(inputs, as_of_date, cfg)
        .groupBy("dt", "campaign_id", "merchant_id", F.col("order_id").isNull().alias("unattributed"))
        .agg(
            F.sum("allocated_ad_fee").alias("allocated_ad_fee"),
            F.sum("unattributed_spend").alias("unattributed_spend"),
        )
    )
    ledger = (
        _ledger_rows(inputs, as_of_date, cfg)
        .groupBy("dt", "merchant_id", "campaign_id")
        .agg(F.sum("ad_fee_refund").alias("ad_fee_refund"))
    )
    return SideFigures(spend, allocation, ledger)


def _stacked(frames: list[DataFrame]) -> DataFrame:
    """The rows of ``frames`` as one frame: each keeps its columns, the others are null."""
    rows = frames[0]
    for frame in frames[1:]:
        rows = rows.unionByName(frame, allowMissingColumns=True)
    return rows


# --- kpi_daily / kpi_merchant_daily --------------------------------------------------------------

# the figures _kpi_by sums (its ratios are computed from them); settled_gmv_ad is net_roi's numerator
_KPI_COUNTS = tuple(c for c in KPI_METRIC_COLUMNS if c in _COUNT_COLUMNS)
_KPI_MONEY = (*(c for c in KPI_METRIC_COLUMNS if c in _MONEY_COLUMNS), "settled_gmv_ad")


def _kpi_by(
    cube: DataFrame,
    buyer_figures: DataFrame,
    spend: DataFrame,
    allocation: DataFrame,
    ledger: DataFrame,
    keys: list[str],
    as_of_date: dt.date,
    cfg: OnetrackConfig,
) -> DataFrame:
    """One row per key of the cube, spend, allocation or ledger (a null last key left out). The
    inputs are stacked, each row carrying its own figures, and summed in one aggregation: one
    shuffle, not one per input plus a key union joined with each."""
    pool_gmv = {
        pool: F.when(F.col("attributed_pool") == pool, F.col("order_amount"))
        for pool in ("ad", "organic", "direct")
    }
    rows = _stacked(
        [
            cube.select(
                *keys,
                "orders",
                F.col("order_amount").alias("payment_gmv"),
                pool_gmv["ad"].alias("gmv_ad"),
                pool_gmv["organic"].alias("gmv_organic"),
                pool_gmv["direct"].alias("gmv_direct"),
                "platform_subsidy",
                "cross_pool_subsidy",
                "returned_orders",
                "refund_amount",
                "settled_gmv",
                F.when(F.col("attributed_pool") == "ad", F.col("settled_gmv")).alias("settled_gmv_ad"),
            ),
            buyer_figures.select(*keys, "buyers"),
            spend.select(*keys, F.col("spend").alias("ad_spend")),
            allocation.select(
                *keys, F.when(F.col("unattributed"), F.col("unattributed_spend")).alias("unattributed_spend")
            ),
            ledger.select(*keys, "ad_fee_refund"),
        ]
    )
    table = (
        rows.filter(F.col(keys[-1]).isNotNull())
        .groupBy(*keys)
        .agg(
            *(F.coalesce(F.sum(c), F.lit(0)).cast("long").alias(c) for c in _KPI_COUNTS),
            *(money_total(F.col(c)).alias(c) for c in _KPI_MONEY),
        )
    )

    net_ad_cost = (F.col("ad_spend") - F.col("ad_fee_refund")).cast(DecimalType(19, 2))
    return (
        table.withColumn("roi", ratio(F.col("gmv_ad"), F.col("ad_spend")))
        .withColumn("return_rate", count_ratio(F.col("returned_orders"), F.col("orders")))
        .withColumn("settlement_rate", ratio(F.col("settled_gmv"), F.col("payment_gmv")))
        .withColumn(
            "settlement_final",
            F.lit(as_of_date) >= F.date_add(F.col("dt"), cfg.settlement_window_days),
        )
        .withColumn("net_roi", ratio(F.col("settled_gmv_ad"), net_ad_cost))
        .withColumn("as_of", F.lit(as_of_date))
    )


def _kpi_daily_from(figures: OrderFigures, side: SideFigures, as_of_date, cfg) -> DataFrame:
    table = _kpi_by(
        figures.cube, figures.buyers["day"], side.spend, side.allocation, side.ledger, ["dt"], as_of_date, cfg
    )
    return table.select(*KPI_DAILY_COLUMNS)


def _kpi_merchant_daily_from(figures: OrderFigures, side: SideFigures, as_of_date, cfg) -> DataFrame:
    table = _kpi_by(
        figures.cube,
        figures.buyers["merchant"],
        side.spend,
        side.allocation,
        side.ledger,
        ["dt", "merchant_id"],
        as_of_date,
        cfg,
    )
    return table.select(*KPI_MERCHANT_DAILY_COLUMNS)


# --- kpi_campaign_daily --------------------------------------------------------------------------


def _kpi_campaign_daily_from(figures: OrderFigures, side: SideFigures, as_of_date) -> DataFrame:
    """One row per (dt, campaign_id) of the spend, attributed orders, allocation or ledger; the
    four stacked and summed in one aggregation (as :func:`_kpi_by`). ``merchant_id`` is the
    campaign's advertiser from the spend, else the allocation, else the orders' merchant, else
    the ledger's."""
    keys = ["dt", "campaign_id"]
    # A(c, d): the cohort's orders attributed to campaign c (their sums per merchant and class).
    attributed = figures.cube.filter((F.col("attributed_pool") == "ad") & F.col("campaign_id").isNotNull())
    rows = _stacked(
        [
            side.spend.select(
                *keys,
                F.col("merchant_id").alias("advertiser_id"),
                "impressions",
                "clicks",
                F.col("spend").alias("ad_spend"),
            ),
            attributed.select(
                *keys,
                F.col("merchant_id").alias("order_merchant_id"),
                F.col("orders").alias("attributed_orders"),
                F.col("order_amount").alias("gmv_ad"),
                "returned_orders",
            ),
            side.allocation.filter(~F.col("unattributed")).select(
                *keys, F.col("merchant_id").alias("allocation_advertiser_id"), "allocated_ad_fee"
            ),
            side.ledger.select(*keys, F.col("merchant_id").alias("ledger_merchant_id"), "ad_fee_refund"),
        ]
    )
    merchants = ("advertiser_id", "allocation_advertiser_id", "order_merchant_id", "ledger_merchant_id")
    counts = ("impressions", "clicks", "attributed_orders", "returned_orders")
    money = ("ad_spend", "gmv_ad", "allocated_ad_fee", "ad_fee_refund")
    table = (
        rows.filter(F.col("campaign_id").isNotNull())
        .groupBy(*keys)
        .agg(
            *(F.max(c).alias(c) for c in merchants),
            *(F.coalesce(F.sum(c), F.lit(0)).cast("long").alias(c) for c in counts),
            *(money_total(F.col(c)).alias(c) for c in money),
        )
    )
    return (
        table.withColumn("merchant_id", F.coalesce(*(F.col(c) for c in merchants)))
        .withColumn("roi", ratio(F.col("gmv_ad"), F.col("ad_spend")))
        .withColumn("return_rate", count_ratio(F.col("returned_orders"), F.col("attributed_orders")))
        .withColumn("as_of", F.lit(as_of_date))
        .select(*KPI_CAMPAIGN_DAILY_COLUMNS)
    )


# --- return_attribution_daily --------------------------------------------------------------------


def _return_attribution_daily_from(figures: OrderFigures, as_of_date: dt.date) -> DataFrame:
    return (
        figures.cube.groupBy("dt", "attributed_pool", "reexposure")
        .agg(
            F.sum("orders").cast("long").alias("orders"),
            F.sum("returned_orders").cast("long").alias("returned_orders"),
            money_sum(F.col("refund_amount")).alias("refund_amount"),
            F.sum("found_cheaper_returns").cast("long").alias("found_cheaper_returns"),
        )
        .withColumn("return_rate", count_ratio(F.col("returned_orders"), F.col("orders")))
        .withColumn("as_of", F.lit(as_of_date))
        .select(*RETURN_ATTRIBUTION_DAILY_COLUMNS)
    )


# --- all four at once ----------------------------------------------------------------------------


def compute_kpi_tables(
    inputs: KpiInputs,
    as_of_date: dt.date,
    cfg: OnetrackConfig,
) -> dict[str, DataFrame]:
    """The four gold KPI tables for run date ``D``, grouped from one computation of the order
    figures (:func:`order_figures`)."""
    figures = order_figures(inputs, as_of_date, cfg)
    # Summed side inputs are small (one row per key and day): materialized once for the three tables.
    side = side_figures(inputs, as_of_date, cfg)
    side = SideFigures(
        *(frame.localCheckpoint(eager=True) for frame in (side.spend, side.allocation, side.ledger))
    )
    return {
        "kpi_daily": _kpi_daily_from(figures, side, as_of_date, cfg),
        "kpi_merchant_daily": _kpi_merchant_daily_from(figures, side, as_of_date, cfg),
        "kpi_campaign_daily": _kpi_campaign_daily_from(figures, side, as_of_date),
        "return_attribution_daily": _return_attribution_daily_from(figures, as_of_date),
    }
