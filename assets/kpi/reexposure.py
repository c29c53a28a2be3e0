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
from assets.storage import materialize_small

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


# An order of the D snapshot with its first return request as of D.
_ORDER_COLUMNS = ("order_id", "user_id", "spu_id", "unit_price", "paid_at", "paid_date", "first_requested_at")


def _orders_with_cut(
    order_attribution: DataFrame, silver_returns: DataFrame, as_of_date: dt.date
) -> DataFrame:
    """The paid orders of the ``as_of = D`` snapshot with their first return request as of D."""
    orders = snapshot(order_attribution, as_of_date).select(
        "order_id", "user_id", "spu_id", "unit_price", "paid_at", "paid_date"
    )
    # Only the returns of these orders count, and every version of one happened after its
    # order's payment: the landing partitions before the snapshot's first paid date (less a day
    # of slack) are not read, so the scan stays within the scope as history grows.
    first_paid_date = orders.agg(F.min("paid_date")).first()[0]
    first_request = (
        returns_as_of(silver_returns, as_of_date, first_paid_date)
        .groupBy("order_id")
        .agg(F.min("requested_at").alias("first_requested_at"))
    )
    return orders.join(first_request, on="order_id", how="left")


def _event_columns(events: DataFrame) -> DataFrame:
    return events.select(
        F.col("event_id"),
        F.col("user_id").alias("event_user_id"),
        F.col("spu_id").alias("event_spu_id"),
        F.col("event_time"),
        F.col("pool"),
        F.col("event_type"),
        F.col("shown_price"),
    )


def _bounded_traffic(
    silver_traffic: DataFrame,
    as_of_date: dt.date,
    first_paid_micros: int | None,
    first_paid_day: dt.date | None,
) -> DataFrame:
    """Traffic landed by D that can qualify for orders paid at or after ``first_paid_micros``.

    Only events after the earliest payment in scope can qualify, and such an event cannot have
    landed before it happened: the landing partitions are pruned from a day (slack for clock skew)
    before the earliest paid date, so the scan stays flat as history grows.
    (Carried as epoch microseconds: a Python datetime would go through the machine's time zone.)
    """
    events = traffic_as_of(silver_traffic, as_of_date)
    if first_paid_micros is not None:
        events = events.filter(F.col("event_time") > F.timestamp_micros(F.lit(first_paid_micros)))
        events = events.filter(F.col("dt") >= F.lit(first_paid_day - dt.timedelta(days=1)))
    return _event_columns(events)


def _window_end(reexposure_window_days: int):
    return F.col("paid_at") + F.make_dt_interval(days=F.lit(reexposure_window_days))


def _exposure_counts(orders: DataFrame, events: DataFrame, reexposure_window_days: int) -> DataFrame:
    """Per order_id, the distinct qualifying events of ``events`` per pool (orders with none: no row)."""
    is_reexposure = (
        F.col("event_type").isin("impression", "click")
        & (F.col("shown_price") < F.col("unit_price"))
        & (F.col("event_time") > F.col("paid_at"))
        & (F.col("event_time") <= _window_end(reexposure_window_days))
        & (F.col("first_requested_at").isNull() | (F.col("event_time") < F.col("first_requested_at")))
    )
    return (
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


def _with_counts(orders: DataFrame, counts: DataFrame) -> DataFrame:
    """``orders`` (order columns + first_requested_at) with the counts of ``counts``, 0 without a row."""
    return (
        orders.join(counts, on="order_id", how="left")
        .withColumn("ad_exposures", F.coalesce(F.col("ad_exposures"), F.lit(0)).cast("long"))
        .withColumn("organic_exposures", F.coalesce(F.col("organic_exposures"), F.lit(0)).cast("long"))
    )


def _finish(rows: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Class from the counts, ``as_of = D``, the columns of ORDER_REEXPOSURE_COLUMNS."""
    ad_seen = F.col("ad_exposures") > 0
    organic_seen = F.col("organic_exposures") > 0
    return (
        rows.withColumn(
            "reexposure",
            F.when(ad_seen & organic_seen, F.lit("both"))
            .when(ad_seen, F.lit("ad"))
            .when(organic_seen, F.lit("organic"))
            .otherwise(F.lit("none")),
        )
        .withColumn("as_of", F.lit(as_of_date))
        .select(*ORDER_REEXPOSURE_COLUMNS)
    )


def compute_order_reexposure(
    order_attribution: DataFrame,
    silver_returns: DataFrame,
    silver_traffic: DataFrame,
    as_of_date: dt.date,
    reexposure_window_days: int = 7,
) -> DataFrame:
    """One row per paid order of ``finance/order_attribution`` (as_of = D), from scratch.

    ``ad_exposures`` / ``organic_exposures`` count the distinct qualifying events per pool;
    ``first_requested_at`` is the first return request known as of D (null without returns).
    The reference for :func:`compute_order_reexposure_incremental`.
    """
    orders = _orders_with_cut(order_attribution, silver_returns, as_of_date)
    # Bound the traffic scan by the earliest payment in scope (one tiny aggregate).
    first_paid_micros, first_paid_day = orders.agg(
        F.min(F.unix_micros("paid_at")), F.min("paid_date")
    ).first()
    events = _bounded_traffic(silver_traffic, as_of_date, first_paid_micros, first_paid_day)
    counts = _exposure_counts(orders, events, reexposure_window_days)
    return _finish(_with_counts(orders, counts), as_of_date)


def usable_base(order_attribution: DataFrame, candidate: dt.date | None) -> dt.date | None:
    """``candidate`` (the stored snapshot a run would build on, from
    :func:`assets.storage.incremental_base`) if ``finance/order_attribution`` still has its
    snapshot of that date, which the incremental computation compares with; else None
    (= recompute from scratch)."""
    if candidate is None:
        return None
    if order_attribution.filter(F.col("as_of") == F.lit(candidate)).limit(1).count() == 0:
        return None
    return candidate


# Orders paid on the last this-many days count as recent when recomputed: their events can only
# be in the last landing partitions.
RECOMPUTE_RECENT_DAYS = 2


def _counts_by_payment_age(
    orders: DataFrame, silver_traffic: DataFrame, as_of_date: dt.date, reexposure_window_days: int
) -> DataFrame:
    """:func:`_exposure_counts` of ``orders`` against the traffic landed by D, in two groups.

    The orders paid recently (most of a day's recomputation: the day's new orders) meet only the
    landing partitions from a day before their earliest payment; the few older ones (a late
    version, a changed return cut) meet the partitions back to their own earliest payment. Each
    group is materialized and broadcast when small, so the traffic is scanned, not shuffled.
    The groups hold different orders, so their counts are simply put together.
    """
    recent_from = as_of_date - dt.timedelta(days=RECOMPUTE_RECENT_DAYS)
    parts = []
    for group in (
        orders.filter(F.col("paid_date") >= F.lit(recent_from)),
        orders.filter(F.col("paid_date") < F.lit(recent_from)),
    ):
        group = materialize_small(group)
        first_paid_micros, first_paid_day = group.agg(
            F.min(F.unix_micros("paid_at")), F.min("paid_date")
        ).first()
        if first_paid_micros is None:  # no order in the group: no traffic scan
            continue
        events = _bounded_traffic(silver_traffic, as_of_date, first_paid_micros, first_paid_day)
        parts.append(_exposure_counts(group, events, reexposure_window_days))
    if not parts:
        no_events = _event_columns(silver_traffic).filter(F.lit(False))
        return _exposure_counts(orders, no_events, reexposure_window_days)
    return parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])


def compute_order_reexposure_incremental(
    order_attribution: DataFrame,
    silver_returns: DataFrame,
    silver_traffic: DataFrame,
    stored_reexposure: DataFrame,
    as_of_date: dt.date,
    previous: dt.date | None,
    reexposure_window_days: int = 7,
) -> DataFrame:
    """The rows of :func:`compute_order_reexposure` for D, from the stored snapshot ``as_of = previous``
    (from :func:`usable_base`; None: computed from scratch).

    An order of the D snapshot is *carried* when the previous snapshot has it, its user, SPU, unit
    price and paid_at are those of the attribution snapshot ``as_of = previous``, and its return
    cut is unchanged (same first request, or neither the old nor the new one can fall inside the
    window). Its events landed by ``previous`` then qualify exactly as they did, so its counts are
    the stored ones plus the qualifying events landed in ``(previous, D]``: those events are joined
    to the carried orders (broadcast when small) and only the matched orders are updated. Every
    other order (new in the snapshot, changed, cut changed) is recomputed as the full computation
    does, with the traffic scan bounded by the earliest payment among those orders. See
    docs/DESIGN.md.
    """
    if previous is None:
        return compute_order_reexposure(
            order_attribution, silver_returns, silver_traffic, as_of_date, reexposure_window_days
        )
    if previous >= as_of_date:
        raise ValueError(f"previous snapshot {previous} is not before {as_of_date}")

    orders = _orders_with_cut(order_attribution, silver_returns, as_of_date)
    before = snapshot(order_attribution, previous).select(
        "order_id",
        F.col("user_id").alias("_prev_user_id"),
        F.col("spu_id").alias("_prev_spu_id"),
        F.col("unit_price").alias("_prev_unit_price"),
        F.col("paid_at").alias("_prev_paid_at"),
    )
    stored = snapshot(stored_reexposure, previous).select(
        "order_id",
        F.lit(True).alias("_stored"),
        F.col("paid_at").alias("_stored_paid_at"),
        F.col("first_requested_at").alias("_stored_first_requested_at"),
        F.col("ad_exposures").alias("_stored_ad_exposures"),
        F.col("organic_exposures").alias("_stored_organic_exposures"),
    )

    window_end = _window_end(reexposure_window_days)

    def cannot_bind(first_requested_at):  # event_time <= window end < first_requested_at
        return first_requested_at.isNull() | (first_requested_at > window_end)

    new_cut, old_cut = F.col("first_requested_at"), F.col("_stored_first_requested_at")
    carried = (
        F.col("_stored").isNotNull()
        & F.col("_prev_paid_at").isNotNull()
        & F.col("user_id").eqNullSafe(F.col("_prev_user_id"))
        & F.col("spu_id").eqNullSafe(F.col("_prev_spu_id"))
        & F.col("unit_price").eqNullSafe(F.col("_prev_unit_price"))
        & F.col("paid_at").eqNullSafe(F.col("_prev_paid_at"))
        # the stored row was built from that attribution snapshot (else: recompute, never trust it)
        & F.col("paid_at").eqNullSafe(F.col("_stored_paid_at"))
        & (new_cut.eqNullSafe(old_cut) | (cannot_bind(new_cut) & cannot_bind(old_cut)))
    )
    classified = (
        orders.join(before, on="order_id", how="left")
        .join(stored, on="order_id", how="left")
        .withColumn("_carried", F.coalesce(carried, F.lit(False)))
        .select(*_ORDER_COLUMNS, "_carried", "_stored_ad_exposures", "_stored_organic_exposures")
        # used by the aggregate below and by both branches: the snapshots, the returns and the
        # joins of the classification are read and computed once, not once per use
        .localCheckpoint(eager=True)
    )
    # One tiny aggregate: the traffic bound of the full computation (earliest paid date of the
    # snapshot) and the earliest payment among carried orders.
    first_paid_day_all, first_carried_micros = classified.agg(
        F.min("paid_date"),
        F.min(F.when(F.col("_carried"), F.unix_micros("paid_at"))),
    ).first()

    # Orders to recompute: exactly the full computation, on these orders only.
    recompute = classified.filter(~F.col("_carried")).select(*_ORDER_COLUMNS)
    recomputed = _with_counts(
        recompute, _counts_by_payment_age(recompute, silver_traffic, as_of_date, reexposure_window_days)
    )

    # Carried orders: stored counts + qualifying events landed in (previous, D]. The work is
    # proportional to those events and the orders they match, not to the carried set: the new
    # events (materialized once, broadcast when small) are joined to the carried orders, the
    # additions are aggregated over the matched orders only, and a carried order without one
    # keeps its stored counts.
    carried_orders = classified.filter(F.col("_carried"))
    if first_carried_micros is None:  # no carried order: no traffic scan
        additions = None
    else:
        landed = traffic_as_of(silver_traffic, as_of_date).filter(
            (F.col("dt") > F.lit(previous))
            & F.col("event_type").isin("impression", "click")
            & F.col("shown_price").isNotNull()
            # an event at or before every carried payment cannot qualify for any carried order
            & (F.col("event_time") > F.timestamp_micros(F.lit(first_carried_micros)))
        )
        if first_paid_day_all is not None:  # the full computation's partition bound, kept literally
            landed = landed.filter(F.col("dt") >= F.lit(first_paid_day_all - dt.timedelta(days=1)))
        # broadcast when small: the carried side is not shuffled
        new_events = materialize_small(_event_columns(landed))
        additions = materialize_small(
            _exposure_counts(carried_orders.select(*_ORDER_COLUMNS), new_events, reexposure_window_days)
        )
    if additions is None:
        updated = carried_orders.withColumn("ad_exposures", F.lit(None).cast("long")).withColumn(
            "organic_exposures", F.lit(None).cast("long")
        )
    else:
        updated = carried_orders.join(additions, on="order_id", how="left")
    carried_rows = (
        updated.withColumn(
            "ad_exposures",
            (F.col("_stored_ad_exposures") + F.coalesce(F.col("ad_exposures"), F.lit(0))).cast("long"),
        )
        .withColumn(
            "organic_exposures",
            (F.col("_stored_organic_exposures") + F.coalesce(F.col("organic_exposures"), F.lit(0))).cast(
                "long"
            ),
        )
        .select(*_ORDER_COLUMNS, "ad_exposures", "organic_exposures")
    )
    return _finish(
        carried_rows.unionByName(recomputed.select(*_ORDER_COLUMNS, "ad_exposures", "organic_exposures")),
        as_of_date,
    )
