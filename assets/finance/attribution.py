"""SPEC §4: last-click attribution of paid orders across both pools, as of a landing date D."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from assets.finance.asof import business_date, days, latest_orders, scope_start
from assets.finance.schemas import ORDER_ATTRIBUTION_SCHEMA


def paid_orders_as_of(orders: DataFrame, as_of_date: dt.date, lookback_days: int) -> DataFrame:
    """Paid orders (latest version as of D has a ``paid_at``) paid in ``[D - lookback, D]``."""
    first_day = scope_start(as_of_date, lookback_days)
    return (
        latest_orders(orders, as_of_date)
        .filter(F.col("paid_at").isNotNull())
        .withColumn("paid_date", business_date(F.col("paid_at")))
        .filter(F.col("paid_date").between(F.lit(first_day), F.lit(as_of_date)))
    )


def clicks_as_of(traffic: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Click events landed by D (silver holds each ``event_id`` once: repeats are duplicates)."""
    return traffic.filter(
        (F.col("dt") <= F.lit(as_of_date)) & (F.col("event_type") == F.lit("click"))
    ).select("event_id", "event_time", "user_id", "product_id", "pool", "campaign_id")


def attribute_orders(
    orders: DataFrame,
    traffic: DataFrame,
    as_of_date: dt.date,
    *,
    window_days: int = 7,
    lookback_days: int = 60,
) -> DataFrame:
    """``finance/order_attribution`` for ``as_of = D``: one row per paid order in scope.

    Touchpoints: clicks of the same user on the same product with
    ``paid_at - window <= event_time <= paid_at``, either pool. The latest wins; ties go to pool
    ``ad``, then the smallest ``event_id``. No touchpoint: ``direct``.
    """
    paid = paid_orders_as_of(orders, as_of_date, lookback_days)
    # A click of the window happened on or after (first paid day - window) and cannot have landed
    # before it happened: only those landing partitions are read (a day of slack for clock skew).
    first_landing = scope_start(as_of_date, lookback_days) - dt.timedelta(days=window_days + 1)
    clicks = clicks_as_of(traffic.filter(F.col("dt") >= F.lit(first_landing)), as_of_date).select(
        F.col("event_id").alias("touch_event_id"),
        F.col("event_time").alias("touch_time"),
        F.col("user_id").alias("touch_user_id"),
        F.col("product_id").alias("touch_product_id"),
        F.col("pool").alias("touch_pool"),
        F.col("campaign_id").alias("touch_campaign_id"),
    )
    in_window = (
        (F.col("touch_user_id") == F.col("user_id"))
        & (F.col("touch_product_id") == F.col("product_id"))
        & (F.col("touch_time") >= F.col("paid_at") - days(window_days))
        & (F.col("touch_time") <= F.col("paid_at"))
    )
    last_touch_first = Window.partitionBy("order_id").orderBy(
        F.col("touch_time").desc_nulls_last(),
        F.when(F.col("touch_pool") == F.lit("ad"), 0).otherwise(1).asc(),
        F.col("touch_event_id").asc_nulls_last(),
    )
    touched = (
        paid.join(clicks, on=in_window, how="left")
        .withColumn("_touch_rank", F.row_number().over(last_touch_first))
        .filter(F.col("_touch_rank") == 1)
    )
    has_touch = F.col("touch_event_id").isNotNull()
    return touched.select(
        F.lit(as_of_date).cast("date").alias("as_of"),
        "order_id",
        "user_id",
        "merchant_id",
        "product_id",
        "spu_id",
        "quantity",
        "unit_price",
        "platform_subsidy",
        "voucher_pool",
        "status",
        "paid_at",
        "paid_date",
        "order_amount",
        "pay_amount",
        F.when(has_touch, F.col("touch_pool")).otherwise(F.lit("direct")).alias("attributed_pool"),
        F.when(F.col("touch_pool") == F.lit("ad"), F.col("touch_campaign_id"))
        .otherwise(F.lit(None).cast("string"))
        .alias("campaign_id"),
        "touch_event_id",
        "touch_time",
    ).select([F.col(f.name).cast(f.dataType) for f in ORDER_ATTRIBUTION_SCHEMA.fields])
