"""SPEC §9: lower-price re-exposure of a paid order (asset ``gold/order_reexposure``).

For a paid order (user ``u``, SPU ``s``, unit price ``x``, paid at ``t``) a lower-price re-exposure
is an impression or click of the same user on the same SPU (any SKU, any merchant) with
``shown_price < x``, in either pool, with ``t < event_time <= t + window`` and before the first
``requested_at`` among the order's returns (any status). ``reexposure`` is the set of pools:
``none``, ``ad``, ``organic`` or ``both``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from assets.kpi.inputs import returns_as_of, snapshot, traffic_as_of

REEXPOSURE_VALUES = ("none", "ad", "organic", "both")

ORDER_REEXPOSURE_COLUMNS = (
    "order_id",
    "paid_date",
    "paid_at",
    "first_requested_at",
    "ad_exposures",
    "organic_exposures",
    "reexposure",
    "as_of",
)

ORDER_REEXPOSURE_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("paid_date", T.DateType()),
        T.StructField("paid_at", T.TimestampType()),
        T.StructField("first_requested_at", T.TimestampType()),
        T.StructField("ad_exposures", T.LongType()),
        T.StructField("organic_exposures", T.LongType()),
        T.StructField("reexposure", T.StringType()),
        T.StructField("as_of", T.DateType()),
    ]
)


def compute_order_reexposure(
    order_attribution: DataFrame,
    silver_returns: DataFrame,
    silver_traffic: DataFrame,
    as_of_date: dt.date,
    reexposure_window_days: int = 7,
) -> DataFrame:
    """One row per paid order of ``finance/order_attribution`` (as_of = D).

    ``ad_exposures`` / ``organic_exposures`` count the distinct qualifying events per pool;
    ``first_requested_at`` is the first return request known as of D (null without returns).
    """
    orders = snapshot(order_attribution, as_of_date).select(
        "order_id", "user_id", "spu_id", "unit_price", "paid_at", "paid_date"
    )

    first_request = (
        returns_as_of(silver_returns, as_of_date)
        .groupBy("order_id")
        .agg(F.min("requested_at").alias("first_requested_at"))
    )
    orders = orders.join(first_request, on="order_id", how="left")

    # Only events after the earliest payment in scope can qualify: bound the traffic scan by it
    # (one tiny aggregate) so the join does not read the whole traffic history.
    # (Carried as epoch microseconds: a Python datetime would go through the machine's time zone.)
    first_paid_micros = orders.agg(F.min(F.unix_micros("paid_at"))).first()[0]
    events = traffic_as_of(silver_traffic, as_of_date)
    if first_paid_micros is not None:
        events = events.filter(F.col("event_time") > F.timestamp_micros(F.lit(first_paid_micros)))
        # ... and such an event cannot have landed before it happened: prune the landing
        # partitions too (a day of slack for clock skew), so the scan stays flat as history grows.
        first_paid_day = orders.agg(F.min("paid_date")).first()[0]
        events = events.filter(F.col("dt") >= F.lit(first_paid_day - dt.timedelta(days=1)))
    events = events.select(
        F.col("event_id"),
        F.col("user_id").alias("event_user_id"),
        F.col("spu_id").alias("event_spu_id"),
        F.col("event_time"),
        F.col("pool"),
        F.col("event_type"),
        F.col("shown_price"),
    )

    window_end = F.col("paid_at") + F.make_dt_interval(days=F.lit(reexposure_window_days))
    is_reexposure = (
        F.col("event_type").isin("impression", "click")
        & (F.col("shown_price") < F.col("unit_price"))
        & (F.col("event_time") > F.col("paid_at"))
        & (F.col("event_time") <= window_end)
        & (F.col("first_requested_at").isNull() | (F.col("event_time") < F.col("first_requested_at")))
    )
    exposures = (
        orders.join(
            events,
            on=(F.col("user_id") == F.col("event_user_id")) & (F.col("spu_id") == F.col("event_spu_id")),
            how="inner",
        )
        .filter(is_reexposure)
        .groupBy("order_id")
        .agg(
            F.count_distinct(F.when(F.col("pool") == "ad", F.col("event_id"))).alias("ad_exposures"),
            F.count_distinct(F.when(F.col("pool") == "organic", F.col("event_id"))).alias(
                "organic_exposures"
            ),
        )
    )

    ad_seen = F.col("ad_exposures") > 0
    organic_seen = F.col("organic_exposures") > 0
    return (
        orders.join(exposures, on="order_id", how="left")
        .withColumn("ad_exposures", F.coalesce(F.col("ad_exposures"), F.lit(0)).cast("long"))
        .withColumn("organic_exposures", F.coalesce(F.col("organic_exposures"), F.lit(0)).cast("long"))
        .withColumn(
            "reexposure",
            F.when(ad_seen & organic_seen, F.lit("both"))
            .when(ad_seen, F.lit("ad"))
            .when(organic_seen, F.lit("organic"))
            .otherwise(F.lit("none")),
        )
        .withColumn("as_of", F.lit(as_of_date))
        .select(*ORDER_REEXPOSURE_COLUMNS)
    )
