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

from assets.finance.schemas import MONEY
from assets.kpi.inputs import returns_as_of, snapshot, traffic_as_of
from assets.storage import LANDING_SLACK_DAYS, materialize_small

REEXPOSURE_VALUES = ("none", "ad", "organic", "both")

ORDER_REEXPOSURE_COLUMNS = (
    "order_id",
    "paid_date",
    "paid_at",
    "user_id",
    "spu_id",
    "unit_price",
    "first_requested_at",
    "ad_exposures",
    "organic_exposures",
    "reexposure",
    "as_of",
)

# ``user_id``, ``spu_id``, ``unit_price`` and ``paid_at`` are the order's fields the counts were
# computed with: a later snapshot compares them with the order's current ones.
ORDER_REEXPOSURE_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("paid_date", T.DateType()),
        T.StructField("paid_at", T.TimestampType()),
        T.StructField("user_id", T.StringType()),
        T.StructField("spu_id", T.StringType()),
        T.StructField("unit_price", MONEY),
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
    The reference for :func:`order_reexposure_changes`.
    """
    orders = _orders_with_cut(order_attribution, silver_returns, as_of_date)
    # Bound the traffic scan by the earliest payment in scope (one tiny aggregate).
    first_paid_micros, first_paid_day = orders.agg(
        F.min(F.unix_micros("paid_at")), F.min("paid_date")
    ).first()
    events = _bounded_traffic(silver_traffic, as_of_date, first_paid_micros, first_paid_day)
    counts = _exposure_counts(orders, events, reexposure_window_days)
    return _finish(_with_counts(orders, counts), as_of_date)


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


def _cannot_bind(first_requested_at, reexposure_window_days: int):
    """A first request that cuts no event of the window: none, or after the window end."""
    return first_requested_at.isNull() | (first_requested_at > _window_end(reexposure_window_days))


def order_reexposure_changes(
    order_attribution: DataFrame,
    changed_keys: DataFrame,
    stored_reexposure: DataFrame,
    silver_returns: DataFrame,
    silver_traffic: DataFrame,
    as_of_date: dt.date,
    previous: dt.date,
    reexposure_window_days: int = 7,
    scope_start: dt.date | None = None,
) -> tuple[DataFrame, DataFrame]:
    """The snapshot of :func:`compute_order_reexposure` as of D, as changes to the stored one as
    of ``previous``: ``(upserts, removed)``, whole rows to write and ``order_id`` keys to delete
    (with the rows paid before ``scope_start``, which leave the scope as whole partitions).

    ``changed_keys``: the orders whose ``finance/order_attribution`` row as of D differs from the
    one as of ``previous`` the stored snapshot was computed from, or is in only one of them (a
    superset is fine: the day's MERGE of the attribution). Every other order keeps its fields, and
    its stored counts stay right for the events landed by ``previous``. So only these are read:

    - the changed orders still in the snapshot (their current rows) and the orders with a return
      version landed in ``(previous, D]``: their first request as of D is computed; an order whose
      fields equal the stored ones (the fields its counts were computed with) and whose return cut
      cuts the same events (same first request, or neither cuts any) is *carried*; the others are
      recomputed as the full computation does (traffic bounded by their payment age);
    - the events landed in ``(previous, D]`` that can qualify, joined to the carried orders whose
      window reaches the earliest of them (the stored rows of a few days of payments, not the
      scope): a matched order gets stored counts plus the new ones.

    The work follows the day's changes and the window, not the scope (docs/DESIGN.md).
    """
    if previous >= as_of_date:
        raise ValueError(f"previous snapshot {previous} is not before {as_of_date}")
    order_columns = [c for c in _ORDER_COLUMNS if c != "first_requested_at"]
    keys = materialize_small(changed_keys.select("order_id").distinct())
    current = materialize_small(
        snapshot(order_attribution, as_of_date)
        .join(keys, on="order_id", how="left_semi")
        .select(*order_columns)
    )
    removed = keys.join(current.select("order_id"), on="order_id", how="left_anti")

    stored = snapshot(stored_reexposure, previous)
    if scope_start is not None:
        stored = stored.filter(F.col("paid_date") >= F.lit(scope_start))
    kept = stored.join(keys, on="order_id", how="left_anti")  # attribution unchanged
    returned = materialize_small(
        silver_returns.filter((F.col("dt") > F.lit(previous)) & (F.col("dt") <= F.lit(as_of_date)))
        .select("order_id")
        .distinct()
    )
    # The orders whose first request is computed again: changed, or a return version landed.
    candidates = materialize_small(
        current.unionByName(kept.join(returned, on="order_id", how="left_semi").select(*order_columns))
    )
    first_paid_date = candidates.agg(F.min("paid_date")).first()[0]
    candidate_keys = candidates.select("order_id")
    # Their returns: every version of the returns that name a candidate (ranked for the latest
    # version as of D like the reference, but only those returns, not the scope's).
    versions = silver_returns.filter(F.col("dt") <= F.lit(as_of_date))
    if first_paid_date is not None:  # the landing rule, as in returns_as_of
        versions = versions.filter(
            F.col("dt") >= F.lit(first_paid_date - dt.timedelta(days=LANDING_SLACK_DAYS))
        )
    their_returns = materialize_small(
        versions.join(candidate_keys, on="order_id", how="left_semi").select("return_id").distinct()
    )
    first_request = (
        returns_as_of(
            silver_returns.join(their_returns, on="return_id", how="left_semi"), as_of_date, first_paid_date
        )
        .join(candidate_keys, on="order_id", how="left_semi")
        .groupBy("order_id")
        .agg(F.min("requested_at").alias("first_requested_at"))
    )
    previous_row = stored.join(candidate_keys, on="order_id", how="left_semi").select(
        "order_id",
        F.lit(True).alias("_stored"),
        *[F.col(c).alias(f"_stored_{c}") for c in ("user_id", "spu_id", "unit_price", "paid_at")],
        F.col("first_requested_at").alias("_stored_first_requested_at"),
        F.col("ad_exposures").alias("_stored_ad_exposures"),
        F.col("organic_exposures").alias("_stored_organic_exposures"),
    )
    new_cut, old_cut = F.col("first_requested_at"), F.col("_stored_first_requested_at")
    carried = (
        F.col("_stored").isNotNull()
        & F.col("user_id").eqNullSafe(F.col("_stored_user_id"))
        & F.col("spu_id").eqNullSafe(F.col("_stored_spu_id"))
        & F.col("unit_price").eqNullSafe(F.col("_stored_unit_price"))
        & F.col("paid_at").eqNullSafe(F.col("_stored_paid_at"))
        & (
            new_cut.eqNullSafe(old_cut)
            | (_cannot_bind(new_cut, reexposure_window_days) & _cannot_bind(old_cut, reexposure_window_days))
        )
    )
    classified = (
        candidates.join(first_request, on="order_id", how="left")
        .join(previous_row, on="order_id", how="left")
        .withColumn("_carried", F.coalesce(carried, F.lit(False)))
        .localCheckpoint(eager=True)
    )
    recompute = classified.filter(~F.col("_carried")).select(*_ORDER_COLUMNS)
    recomputed = _with_counts(
        recompute, _counts_by_payment_age(recompute, silver_traffic, as_of_date, reexposure_window_days)
    )
    stored_counts = [
        F.col("_stored_ad_exposures").alias("_base_ad"),
        F.col("_stored_organic_exposures").alias("_base_organic"),
    ]
    carried_candidates = classified.filter(F.col("_carried")).select(*_ORDER_COLUMNS, *stored_counts)

    # Events landed in (previous, D] that can qualify, and the carried orders whose window
    # (paid_at, paid_at + window] reaches the earliest of them.
    landed = traffic_as_of(silver_traffic, as_of_date).filter(
        (F.col("dt") > F.lit(previous))
        & F.col("event_type").isin("impression", "click")
        & F.col("shown_price").isNotNull()
    )
    new_events = materialize_small(_event_columns(landed))
    earliest_micros = new_events.agg(F.min(F.unix_micros("event_time"))).first()[0]
    others = kept.join(candidates.select("order_id"), on="order_id", how="left_anti").select(
        *_ORDER_COLUMNS,
        F.col("ad_exposures").alias("_base_ad"),
        F.col("organic_exposures").alias("_base_organic"),
    )
    if earliest_micros is None:  # no event landed: only the candidates change
        additions = None
        touched = others.filter(F.lit(False))
    else:
        earliest = F.timestamp_micros(F.lit(earliest_micros))
        # an event qualifies up to paid_at + window inclusive
        reach = F.col("paid_at") >= earliest - F.make_dt_interval(days=F.lit(reexposure_window_days))
        reach_day = dt.datetime.fromtimestamp(earliest_micros / 1e6, dt.UTC).date() - dt.timedelta(
            days=reexposure_window_days + 1
        )
        # paid_date (a business date) is never before the UTC date of paid_at less a day: the
        # partition filter prunes the stored scope to the days the window can reach
        others = others.filter((F.col("paid_date") >= F.lit(reach_day)) & reach)
        # a few days of payments: broadcast when small, so the day's events are not shuffled
        exposed = materialize_small(
            others.select(*_ORDER_COLUMNS).unionByName(carried_candidates.select(*_ORDER_COLUMNS))
        )
        additions = materialize_small(_exposure_counts(exposed, new_events, reexposure_window_days))
        touched = others.join(additions.select("order_id"), on="order_id", how="left_semi")

    def plus_additions(rows: DataFrame) -> DataFrame:
        if additions is None:
            rows = rows.withColumn("ad_exposures", F.lit(None).cast("long")).withColumn(
                "organic_exposures", F.lit(None).cast("long")
            )
        else:
            rows = rows.join(additions, on="order_id", how="left")
        return rows.select(
            *_ORDER_COLUMNS,
            (F.col("_base_ad") + F.coalesce(F.col("ad_exposures"), F.lit(0)))
            .cast("long")
            .alias("ad_exposures"),
            (F.col("_base_organic") + F.coalesce(F.col("organic_exposures"), F.lit(0)))
            .cast("long")
            .alias("organic_exposures"),
        )

    upserts = (
        recomputed.select(*_ORDER_COLUMNS, "ad_exposures", "organic_exposures")
        .unionByName(plus_additions(carried_candidates))
        .unionByName(plus_additions(touched))
    )
    return _finish(upserts, as_of_date), removed
