"""SPEC §4: last-click attribution of paid orders across both pools, as of a landing date D."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from assets.finance.asof import business_date, days, latest_orders, scope_start
from assets.finance.schemas import ORDER_ATTRIBUTION_SCHEMA
from assets.storage import LANDING_SLACK_DAYS, materialize_small


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


ORDER_FIELDS = (
    "order_id",
    "user_id",
    "merchant_id",
    "product_id",
    "spu_id",
    "quantity",
    "unit_price",
    "platform_subsidy",
    "voucher_pool",
    "paid_at",
    "paid_date",
    "order_amount",
    "pay_amount",
)
TOUCH_FIELDS = ("touch_event_id", "touch_time", "touch_pool", "touch_campaign_id")


def _all(conditions) -> Column:
    conditions = list(conditions)
    out = conditions[0]
    for condition in conditions[1:]:
        out = out & condition
    return out


def _ad_first(pool):
    """SPEC §4's pool tie rank: ``ad`` before ``organic``."""
    return F.when(pool == F.lit("ad"), 0).otherwise(1)


def _touch_order() -> tuple:
    """SPEC §4 tie rule: the latest touch; same time: pool ``ad`` first, then the smallest event_id."""
    return (
        F.col("touch_time").desc_nulls_last(),
        _ad_first(F.col("touch_pool")).asc(),
        F.col("touch_event_id").asc_nulls_last(),
    )


# Paid dates of the last this-many days count as recent for a fresh touch lookup.
FRESH_RECENT_DAYS = 2


def _touch_columns(clicks: DataFrame) -> DataFrame:
    return clicks.select(
        F.col("event_id").alias("touch_event_id"),
        F.col("event_time").alias("touch_time"),
        F.col("user_id").alias("touch_user_id"),
        F.col("product_id").alias("touch_product_id"),
        F.col("pool").alias("touch_pool"),
        F.col("campaign_id").alias("touch_campaign_id"),
    )


def _in_window(window_days: int):
    return (
        (F.col("touch_user_id") == F.col("user_id"))
        & (F.col("touch_product_id") == F.col("product_id"))
        & (F.col("touch_time") >= F.col("paid_at") - days(window_days))
        & (F.col("touch_time") <= F.col("paid_at"))
    )


def _best_touch(candidates: DataFrame) -> DataFrame:
    """One row per order: the candidate touch that wins SPEC §4's order (null touch last)."""
    ranked = Window.partitionBy("order_id").orderBy(*_touch_order())
    return (
        candidates.withColumn("_touch_rank", F.row_number().over(ranked))
        .filter(F.col("_touch_rank") == 1)
        .drop("_touch_rank")
    )


def _keep_or_take(rows: DataFrame, challengers: DataFrame) -> DataFrame:
    """``rows`` (ORDER_FIELDS + TOUCH_FIELDS) with the touch of ``challengers`` (``order_id`` +
    TOUCH_FIELDS, at most one per order, none of them a row's own touch) where it wins SPEC §4's
    order over the row's touch: a touch beats none; then the later time; then pool ``ad``; then
    the smaller event_id (the order :func:`_best_touch` ranks by)."""
    new = {f: F.col(f"_new_{f}") for f in TOUCH_FIELDS}
    old = {f: F.col(f) for f in TOUCH_FIELDS}

    same_time = new["touch_time"] == old["touch_time"]
    takes = new["touch_event_id"].isNotNull() & (
        old["touch_event_id"].isNull()
        | (new["touch_time"] > old["touch_time"])
        | (same_time & (_ad_first(new["touch_pool"]) < _ad_first(old["touch_pool"])))
        | (
            same_time
            & (_ad_first(new["touch_pool"]) == _ad_first(old["touch_pool"]))
            & (new["touch_event_id"] < old["touch_event_id"])
        )
    )
    renamed = challengers.select("order_id", *[F.col(f).alias(f"_new_{f}") for f in TOUCH_FIELDS])
    return (
        rows.join(renamed, on="order_id", how="left")
        .withColumn("_takes", F.coalesce(takes, F.lit(False)))
        .select(
            *ORDER_FIELDS,
            *[F.when(F.col("_takes"), new[f]).otherwise(old[f]).alias(f) for f in TOUCH_FIELDS],
        )
    )


def _touch_orders(paid: DataFrame, clicks: DataFrame, window_days: int) -> DataFrame:
    """Paid orders (ORDER_FIELDS) with their last click in the window, or null touch fields.

    The orders meet the clicks in an inner join (so a broadcast ``paid``, see
    :func:`assets.storage.materialize_small`, is the build side and the clicks are only
    scanned, not shuffled); the best touch per matched order then goes back onto the orders.
    """
    orders = paid.select(*ORDER_FIELDS)
    best = _best_touch(orders.join(_touch_columns(clicks), on=_in_window(window_days), how="inner"))
    return orders.join(best.select("order_id", *TOUCH_FIELDS), on="order_id", how="left").select(
        *ORDER_FIELDS, *TOUCH_FIELDS
    )


def _attribution_rows(touched: DataFrame, as_of_date: dt.date) -> DataFrame:
    has_touch = F.col("touch_event_id").isNotNull()
    return touched.select(
        F.lit(as_of_date).cast("date").alias("as_of"),
        *[c for c in ORDER_FIELDS],
        F.when(has_touch, F.col("touch_pool")).otherwise(F.lit("direct")).alias("attributed_pool"),
        F.when(F.col("touch_pool") == F.lit("ad"), F.col("touch_campaign_id"))
        .otherwise(F.lit(None).cast("string"))
        .alias("campaign_id"),
        "touch_event_id",
        "touch_time",
    ).select([F.col(f.name).cast(f.dataType) for f in ORDER_ATTRIBUTION_SCHEMA.fields])


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
    clicks = clicks_as_of(traffic.filter(F.col("dt") >= F.lit(first_landing)), as_of_date)
    return _attribution_rows(_touch_orders(paid, clicks, window_days), as_of_date)


def versions_that_can_win(
    orders: DataFrame, newest: DataFrame, first_new_landing: dt.date, as_of_date: dt.date
) -> DataFrame:
    """The versions, landed by D, of the orders of ``newest`` (``order_id``, ``_newest`` = the
    greatest ``updated_at`` among the order's versions landed in ``[first_new_landing, D]``) that
    can be its latest version as of D.

    A version that beats the newest one has an ``updated_at`` at least as late, and a record
    cannot land more than a day before it happened (``LANDING_SLACK_DAYS``): so it landed on or
    after that business day less a day. Only those landing partitions are read, not every version
    of the history. Orders whose newest version is recent (most: the day's new orders and status
    changes) read the last partitions; the few others (a late version of an old order) read back
    to their own bound, only for their own ids. The versions landed since ``first_new_landing``
    are always read (a version stamped in the future would otherwise escape its own bound).
    """
    recent_from = as_of_date - dt.timedelta(days=FRESH_RECENT_DAYS)
    first_landing = F.least(
        F.date_sub(business_date(F.col("_newest")), LANDING_SLACK_DAYS), F.lit(first_new_landing)
    )
    parts = []
    for group in (
        newest.filter(business_date(F.col("_newest")) >= F.lit(recent_from)),
        newest.filter(business_date(F.col("_newest")) < F.lit(recent_from)),
    ):
        earliest = group.agg(F.min(first_landing)).first()[0]
        if earliest is None:
            continue
        parts.append(
            orders.filter((F.col("dt") >= F.lit(earliest)) & (F.col("dt") <= F.lit(as_of_date))).join(
                group.select("order_id"), on="order_id", how="left_semi"
            )
        )
    if not parts:
        return orders.filter(F.lit(False))
    return parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])


def attribute_orders_incremental(
    orders: DataFrame,
    traffic: DataFrame,
    previous: DataFrame,
    previous_date: dt.date,
    as_of_date: dt.date,
    *,
    window_days: int = 7,
    lookback_days: int = 60,
) -> DataFrame:
    """The same rows as :func:`attribute_orders` for D, from the snapshot as of an earlier date:
    the previous rows still in scope, less the orders :func:`attribution_changes` removes or
    rewrites, plus its rewritten rows."""
    upserts, removed = attribution_changes(
        orders, traffic, previous, previous_date, as_of_date,
        window_days=window_days, lookback_days=lookback_days,
    )
    first_day = scope_start(as_of_date, lookback_days)
    unchanged = (
        previous.filter(F.col("paid_date") >= F.lit(first_day))
        .join(removed, on="order_id", how="left_anti")
        .join(upserts.select("order_id"), on="order_id", how="left_anti")
        .withColumn("as_of", F.lit(as_of_date).cast("date"))
    )
    return unchanged.select(*ORDER_ATTRIBUTION_SCHEMA.fieldNames()).unionByName(upserts)


def attribution_changes(
    orders: DataFrame,
    traffic: DataFrame,
    previous: DataFrame,
    previous_date: dt.date,
    as_of_date: dt.date,
    *,
    window_days: int = 7,
    lookback_days: int = 60,
) -> tuple[DataFrame, DataFrame]:
    """What changes in the attribution from an earlier snapshot to D: ``(upserts, removed)``, the
    rows as of D of the orders whose row is new or may differ (``as_of = D``), and the
    ``order_id`` of orders of the previous snapshot that are no longer paid orders in scope for
    another reason than their paid date leaving it (orders paid before the scope of D drop out:
    the reader filters them). Every other row of the previous snapshot is the same as of D.

    ``previous`` is the attribution as of ``previous_date`` (< D) with the same settings. Only the
    silver rows landed in ``(previous_date, D]`` can change anything (SPEC §1 as-of rule):

    - an order with a version landed then is re-read (its latest version as of D, from the
      versions that can still win: :func:`versions_that_can_win`). If its
      ``user_id``, ``product_id`` and ``paid_at`` are those of its previous row, the clicks landed
      by the previous date give the same best touch as before, so the previous touch is kept (and
      if none of the row's fields changed, e.g. only the order's status, the row stays as it was);
      otherwise (a new paid order, or those fields changed) its touch is looked up afresh, in the
      landing partitions its window can be in;
    - any other order keeps its previous row (its latest version is the same);
    - the clicks landed in ``(previous_date, D]`` then compete with the kept touches under SPEC §4's
      order (latest; ad first; smallest event_id): the best of all clicks landed by D is the best
      of the previous best and the new ones; an order whose touch a new click may take is an
      upsert. A click is only in the window of orders paid at or after it, so the snapshot is read
      from the paid date of the earliest new click on;
    - orders paid before the scope of D drop out.

    Each step is bounded by what landed since the previous date (new versions, new clicks), except
    one scan of the snapshot for the changed orders' previous rows: the day's changes are
    broadcast to the joins with the snapshot, only orders a new click matches are ranked again
    (their best new click then meets the kept touch in one pass, :func:`_keep_or_take`), and a
    fresh lookup reads the last landing partitions for recent orders and older ones only for the
    user/product pairs of the few older orders.
    ``tests/finance/test_attribution.py`` checks the rows equal the full recompute day after day.
    """
    D = as_of_date
    if previous_date >= D:
        raise ValueError(f"previous_date {previous_date} must be before {D}")
    first_day = scope_start(D, lookback_days)
    landed_since = (F.col("dt") > F.lit(previous_date)) & (F.col("dt") <= F.lit(D))

    newest = materialize_small(
        orders.filter(landed_since).groupBy("order_id").agg(F.max("updated_at").alias("_newest"))
    )
    changed_ids = newest.select("order_id")
    # Materialized once: the latest version of each changed order, from the versions that can win.
    candidates = versions_that_can_win(orders, newest, previous_date + dt.timedelta(days=1), D)
    changed = paid_orders_as_of(candidates, D, lookback_days).localCheckpoint(eager=True)
    before = previous.filter(F.col("paid_date") >= F.lit(first_day)).select(
        *ORDER_FIELDS,
        "touch_event_id",
        "touch_time",
        F.when(F.col("touch_event_id").isNotNull(), F.col("attributed_pool")).alias("touch_pool"),
        F.col("campaign_id").alias("touch_campaign_id"),
    )
    kept = before.join(changed_ids, on="order_id", how="left_anti")
    previous_touch = before.join(changed_ids, on="order_id", how="left_semi").select(
        "order_id", *[F.col(f).alias(f"_prev_{f}") for f in ORDER_FIELDS if f != "order_id"], *TOUCH_FIELDS
    )

    def same_as_before(fields):
        return _all(F.col(f).eqNullSafe(F.col(f"_prev_{f}")) for f in fields)

    joined = changed.select(*ORDER_FIELDS).join(previous_touch, on="order_id", how="left")
    same_keys = same_as_before(("user_id", "product_id", "paid_at"))
    relabeled = joined.filter(same_keys)
    # a new version that changed none of the row's fields (e.g. only its status) leaves it as it is
    unchanged = relabeled.filter(same_as_before(f for f in ORDER_FIELDS if f != "order_id"))
    relabeled = relabeled.filter(~same_as_before(f for f in ORDER_FIELDS if f != "order_id"))
    relabeled = relabeled.select(*ORDER_FIELDS, *TOUCH_FIELDS)
    fresh = joined.filter(~same_keys).select(*ORDER_FIELDS).localCheckpoint(eager=True)

    # The clicks landed since the previous date compete with the carried touches: the best new
    # click of each order it falls in the window of (equi-join on user and product, the clicks
    # broadcast; only the join keys of the carried rows are read) is materialized, broadcast, and
    # replaces the carried touch where it wins (:func:`_keep_or_take`). A click can only be in the
    # window of an order paid at or after it, so only the snapshot's paid dates from the earliest
    # new click on are read. Only the orders it may change are carried into the upserts.
    new_touches = materialize_small(_touch_columns(clicks_as_of(traffic.filter(landed_since), D)))
    first_click = new_touches.agg(F.min("touch_time")).first()[0]
    challengeable = kept.select(*ORDER_FIELDS, *TOUCH_FIELDS).unionByName(
        unchanged.select(*ORDER_FIELDS, *TOUCH_FIELDS)
    )
    if first_click is None:
        challengeable = challengeable.filter(F.lit(False))
    else:
        challengeable = challengeable.filter(F.col("paid_date") >= business_date(F.lit(first_click)))
    best_new = materialize_small(
        _best_touch(
            challengeable.select("order_id", "user_id", "product_id", "paid_at")
            .unionByName(relabeled.select("order_id", "user_id", "product_id", "paid_at"))
            .join(new_touches, on=_in_window(window_days))
            .select("order_id", *TOUCH_FIELDS)
        )
    )
    challenged = challengeable.join(best_new.select("order_id"), on="order_id", how="left_semi")
    touched = _keep_or_take(challenged.unionByName(relabeled), best_new)

    # Fresh lookups: recent orders read the last landing partitions; the few older ones (a late
    # version, a changed product) read back to their window, only for their own user/product.
    recent_from = D - dt.timedelta(days=FRESH_RECENT_DAYS)
    recent = materialize_small(fresh.filter(F.col("paid_date") >= F.lit(recent_from)))
    clicks = clicks_as_of(
        traffic.filter(F.col("dt") >= F.lit(recent_from - dt.timedelta(days=window_days + 1))), D
    )
    touched = touched.unionByName(_touch_orders(recent, clicks, window_days))
    older = fresh.filter(F.col("paid_date") < F.lit(recent_from))
    first_older = older.agg(F.min("paid_date")).first()[0]
    if first_older is not None:
        keys = materialize_small(
            older.select(F.col("user_id").alias("_u"), F.col("product_id").alias("_p")).distinct()
        )
        their_clicks = clicks_as_of(
            traffic.filter(F.col("dt") >= F.lit(first_older - dt.timedelta(days=window_days + 1))), D
        ).join(
            keys, on=(F.col("user_id") == F.col("_u")) & (F.col("product_id") == F.col("_p")), how="left_semi"
        )
        touched = touched.unionByName(_touch_orders(materialize_small(older), their_clicks, window_days))
    # A changed order that is no longer a paid order in scope (its paid_at cleared or moved out).
    removed = changed_ids.join(changed.select("order_id"), on="order_id", how="left_anti")
    return _attribution_rows(touched, D), removed
