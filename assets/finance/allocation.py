"""SPEC §5: a campaign-day's spend split over its attributed orders by largest remainder."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from assets.finance.asof import FEN, campaign_day_spend, from_fen, scope_start, to_fen
from assets.finance.schemas import AD_FEE_ALLOCATION_SCHEMA, MONEY


def allocate_ad_fees(
    attribution: DataFrame,
    ad_spend: DataFrame,
    as_of_date: dt.date,
    *,
    lookback_days: int = 60,
) -> DataFrame:
    """``finance/ad_fee_allocation`` for ``as_of = D``.

    ``attribution`` is the output of :func:`attribute_orders` for the same D. Per campaign-day
    ``(c, d)``, in whole fen: ``share = floor(spend * amount / total)`` with exact integer
    arithmetic, then the ``spend - sum(share)`` remaining fen go one each to the largest
    remainders ``spend * amount - share * total`` (ties: smaller ``order_id``). The fees of a
    campaign-day therefore add up to its spend exactly.

    Rows: one per attributed order of a campaign-day (a campaign-day with attributed orders but no
    spend row has spend 0 and fees 0), plus one row with ``order_id`` null for every campaign-day
    with spend and no attributed order (``unattributed_spend = campaign_spend``).
    """
    spend = campaign_day_spend(ad_spend, as_of_date, scope_start(as_of_date, lookback_days))
    attributed = attribution.filter(F.col("attributed_pool") == F.lit("ad")).select(
        F.col("paid_date").alias("stat_date"),
        "campaign_id",
        "order_id",
        "order_amount",
        F.col("merchant_id").alias("order_merchant_id"),
    )
    campaign_day = Window.partitionBy("stat_date", "campaign_id")
    joined = (
        spend.join(attributed, on=["stat_date", "campaign_id"], how="full")
        .withColumn("campaign_spend", F.coalesce(F.col("campaign_spend"), F.lit(0).cast(MONEY)))
        # A campaign-day without a spend row still needs an advertiser: its orders' merchant.
        .withColumn(
            "advertiser_id",
            F.coalesce(F.col("advertiser_id"), F.min("order_merchant_id").over(campaign_day)),
        )
    )

    orders = joined.filter(F.col("order_id").isNotNull())
    spend_fen = to_fen(F.col("campaign_spend"))
    amount_fen = to_fen(F.col("order_amount"))
    by_remainder = campaign_day.orderBy(F.col("_remainder").desc(), F.col("order_id").asc())
    allocated = (
        orders.withColumn("_spend_fen", spend_fen)
        .withColumn("_amount_fen", amount_fen)
        .withColumn("_total_fen", F.sum("_amount_fen").over(campaign_day).cast(FEN))
        # Exact: DECIMAL(38,0) x DECIMAL(38,0) keeps scale 0 (and raises on overflow under ANSI).
        .withColumn("_numerator", (F.col("_spend_fen") * F.col("_amount_fen")).cast(FEN))
        .withColumn("_share", F.expr("_numerator div _total_fen").cast(FEN))
        .withColumn("_remainder", (F.col("_numerator") - F.col("_share") * F.col("_total_fen")).cast(FEN))
        .withColumn("_leftover", (F.col("_spend_fen") - F.sum("_share").over(campaign_day)).cast(FEN))
        .withColumn("_rank", F.row_number().over(by_remainder))
        .withColumn(
            "_fee_fen",
            F.col("_share") + F.when(F.col("_rank") <= F.col("_leftover"), F.lit(1)).otherwise(F.lit(0)),
        )
        .select(
            "stat_date",
            "campaign_id",
            "advertiser_id",
            "campaign_spend",
            "order_id",
            "order_amount",
            from_fen(F.col("_fee_fen")).alias("allocated_ad_fee"),
            F.lit(0).cast(MONEY).alias("unattributed_spend"),
        )
    )
    unattributed = joined.filter(F.col("order_id").isNull()).select(
        "stat_date",
        "campaign_id",
        "advertiser_id",
        "campaign_spend",
        F.lit(None).cast("string").alias("order_id"),
        F.lit(None).cast(MONEY).alias("order_amount"),
        F.lit(None).cast(MONEY).alias("allocated_ad_fee"),
        F.col("campaign_spend").alias("unattributed_spend"),
    )
    return (
        allocated.unionByName(unattributed)
        .withColumn("as_of", F.lit(as_of_date).cast("date"))
        .select([F.col(f.name).cast(f.dataType) for f in AD_FEE_ALLOCATION_SCHEMA.fields])
    )


def order_fees(allocation: DataFrame) -> DataFrame:
    """``order_id -> allocated_ad_fee`` (order rows of an allocation)."""
    return allocation.filter(F.col("order_id").isNotNull()).select("order_id", "allocated_ad_fee")
