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
    allocated, unattributed = allocation_rows(attribution, ad_spend, as_of_date, lookback_days=lookback_days)
    return (
        allocated.unionByName(unattributed)
        .withColumn("as_of", F.lit(as_of_date).cast("date"))
        .select([F.col(f.name).cast(f.dataType) for f in AD_FEE_ALLOCATION_SCHEMA.fields])
    )


def allocation_rows(
    attribution: DataFrame,
    ad_spend: DataFrame,
    as_of_date: dt.date,
    *,
    lookback_days: int = 60,
    passthrough: tuple[str, ...] = (),
) -> tuple[DataFrame, DataFrame]:
    """The order rows (with the ``passthrough`` columns of the attribution) and the unattributed
    campaign-day rows of :func:`allocate_ad_fees`, without ``as_of``."""
    spend = campaign_day_spend(ad_spend, as_of_date, scope_start(as_of_date, lookback_days))
    attributed = attribution.filter(F.col("attributed_pool") == F.lit("ad")).select(
        F.col("paid_date").alias("stat_date"),
        "campaign_id",
        "order_id",
        "order_amount",
        F.col("merchant_id").alias("_order_merchant_id"),
        *[F.col(c).alias(f"_pass_{c}") for c in passthrough],
    )
    campaign_day = Window.partitionBy("stat_date", "campaign_id")
    joined = spend.join(attributed, on=["stat_date", "campaign_id"], how="full").select(
        "stat_date",
        "campaign_id",
        # A campaign-day without a spend row still needs an advertiser: its orders' merchant.
        F.coalesce(F.col("advertiser_id"), F.min("_order_merchant_id").over(campaign_day)).alias(
            "advertiser_id"
        ),
        F.coalesce(F.col("campaign_spend"), F.lit(0).cast(MONEY)).alias("campaign_spend"),
        "order_id",
        "order_amount",
        *[f"_pass_{c}" for c in passthrough],
    )

    # Whole fen; DECIMAL(38,0) x DECIMAL(38,0) keeps scale 0 (and raises on overflow under ANSI).
    with_shares = (
        joined.filter(F.col("order_id").isNotNull())
        .select(
            "*",
            to_fen(F.col("campaign_spend")).alias("_spend_fen"),
            to_fen(F.col("order_amount")).alias("_amount_fen"),
        )
        .select(
            "*",
            (F.col("_spend_fen") * F.col("_amount_fen")).cast(FEN).alias("_numerator"),
            F.sum("_amount_fen").over(campaign_day).cast(FEN).alias("_total_fen"),
        )
        .select("*", F.expr("_numerator div _total_fen").cast(FEN).alias("_share"))
        .select(
            "*",
            (F.col("_numerator") - F.col("_share") * F.col("_total_fen")).cast(FEN).alias("_remainder"),
            (F.col("_spend_fen") - F.sum("_share").over(campaign_day)).cast(FEN).alias("_leftover"),
        )
    )
    by_remainder = campaign_day.orderBy(F.col("_remainder").desc(), F.col("order_id").asc())
    extra_fen = F.when(F.row_number().over(by_remainder) <= F.col("_leftover"), F.lit(1)).otherwise(F.lit(0))
    allocated = with_shares.select(
        "stat_date",
        "campaign_id",
        "advertiser_id",
        "campaign_spend",
        "order_id",
        "order_amount",
        from_fen(F.col("_share") + extra_fen).alias("allocated_ad_fee"),
        F.lit(0).cast(MONEY).alias("unattributed_spend"),
        *[F.col(f"_pass_{c}").alias(c) for c in passthrough],
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
    return allocated, unattributed


_CAMPAIGN_DAY = ["stat_date", "campaign_id"]
# A row of the allocation: an order of a campaign-day, or (order_id null) its unattributed spend.
ALLOCATION_KEY = ("stat_date", "campaign_id", "order_id")


def _ad_order_inputs(attribution: DataFrame) -> DataFrame:
    """What the allocation reads of an attributed order (a campaign-day's inputs besides spend)."""
    return attribution.filter(F.col("attributed_pool") == F.lit("ad")).select(
        F.col("paid_date").alias("stat_date"), "campaign_id", "order_id", "order_amount", "merchant_id"
    )


def allocation_changes(
    attribution: DataFrame,
    previous_attribution: DataFrame,
    previous_allocation: DataFrame,
    previous_date: dt.date,
    ad_spend: DataFrame,
    as_of_date: dt.date,
    *,
    lookback_days: int = 60,
    changed_rows: DataFrame | None = None,
) -> tuple[DataFrame, DataFrame]:
    """What changes in the allocation from the one as of an earlier date to D: ``(upserts,
    removed)``, the rows as of D of the campaign-days allocated again (``as_of = D``), and the keys
    (:data:`ALLOCATION_KEY`) of their previous rows that are not among those. Every other row of
    the previous allocation in the scope of D is a row as of D; the rows of campaign-days before
    the scope drop out (the writer drops those ``stat_date`` partitions). Applied so, the result
    is :func:`allocate_ad_fees` for D.

    A campaign-day's rows depend only on its attributed orders (id, amount, merchant) and its
    restated spend. So only campaign-days whose attributed orders differ between the attribution
    snapshots of ``previous_date`` and D, or with ad-spend rows landed in ``(previous_date, D]``,
    are allocated again. ``previous_attribution`` / ``previous_allocation``: the snapshots as of
    ``previous_date``. ``changed_rows``: the attribution rows that differ between the two
    snapshots, each changed order's row before and after (the change data feed of the commit of
    D, :meth:`assets.snapshots.SnapshotTable.changes`); given, the changed campaign-days are theirs
    and the two snapshots are not compared (a superset of the changed orders is fine: their
    campaign-days are allocated again to the same rows).
    """
    D = as_of_date
    if previous_date >= D:
        raise ValueError(f"previous_date {previous_date} must be before {D}")
    first_day = scope_start(D, lookback_days)
    if changed_rows is not None:
        changed_orders = _ad_order_inputs(changed_rows).select(*_CAMPAIGN_DAY)
    else:
        # The ad orders in one snapshot and not the other (each order_id once per snapshot): one
        # aggregate over both, instead of two set differences that shuffle both snapshots twice.
        now, before = _ad_order_inputs(attribution), _ad_order_inputs(previous_attribution)
        changed_orders = (
            now.withColumn("_side", F.lit(1))
            .unionByName(before.withColumn("_side", F.lit(-1)))
            .groupBy(*now.columns)
            .agg(F.sum("_side").alias("_side"))
            .filter(F.col("_side") != 0)
            .select(*_CAMPAIGN_DAY)
        )
    new_spend = ad_spend.filter((F.col("dt") > F.lit(previous_date)) & (F.col("dt") <= F.lit(D))).select(
        *_CAMPAIGN_DAY
    )
    dirty = (
        changed_orders.unionByName(new_spend)
        .filter(F.col("stat_date").between(F.lit(first_day), F.lit(D)))
        .distinct()
        .localCheckpoint(eager=True)
    )
    upserts = allocate_ad_fees(
        attribution.join(
            dirty.withColumnRenamed("stat_date", "paid_date"),
            on=["paid_date", "campaign_id"],
            how="left_semi",
        ),
        ad_spend.join(dirty, on=_CAMPAIGN_DAY, how="left_semi"),
        D,
        lookback_days=lookback_days,
    ).localCheckpoint(eager=True)  # written, and its keys compared below
    new_keys = upserts.select(*[F.col(c).alias(f"_new_{c}") for c in ALLOCATION_KEY])
    removed = (
        previous_allocation.filter(F.col("stat_date") >= F.lit(first_day))
        .join(dirty, on=_CAMPAIGN_DAY, how="left_semi")
        .select(*ALLOCATION_KEY)
        .join(new_keys, [F.col(c).eqNullSafe(F.col(f"_new_{c}")) for c in ALLOCATION_KEY], how="left_anti")
    )
    return upserts, removed
