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
from collections.abc import Callable, Mapping
from functools import partial

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from assets.finance.allocation import ALLOCATION_KEY, allocation_rows
from assets.finance.asof import FEN, days, from_fen, latest_orders, latest_returns, scope_start, to_fen
from assets.finance.attribution import attribute_orders
from assets.finance.schemas import (
    AD_FEE_ALLOCATION_SCHEMA,
    ENTRY_REFUND,
    ENTRY_REVERSAL,
    LEDGER_COLUMNS,
    LEDGER_SCHEMA,
    ORDER_ATTRIBUTION_SCHEMA,
    SILVER_SCHEMAS,
)
from assets.snapshots import SnapshotTable
from assets.storage import (
    LANDING_SLACK_DAYS,
    materialize_small,
    partition_dates,
    read_or_empty,
    table_exists,
    table_version,
)
from pipelines.config import OnetrackConfig

LEDGER_TABLE = ("finance", "ad_fee_refund_ledger")
LEDGER_DAYS_TABLE = ("finance", "ledger_days")
SILVER_INPUTS = ("orders", "returns", "ad_spend", "traffic")


class LedgerDriftError(RuntimeError):
    """Recomputing a settled day gives other entries while later days already build on it."""


class LandingNotIngestedError(RuntimeError):
    """A landing date the ledger would be computed from has not been ingested (yet)."""


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

    ``ad_orders``: attributed-to-``ad`` orders with ``allocated_ad_fee`` (as of the same D).
    """
    orders = ad_orders.select(
        "order_id", "merchant_id", "campaign_id", "paid_at", "order_amount", "pay_amount", "allocated_ad_fee"
    )
    return (
        refunded_returns(returns_as_of, eligible_return_types)
        .select("return_id", "order_id", "return_type", "status", "refunded_at", "refund_amount")
        .join(orders, on="order_id", how="inner")
        .filter(F.col("refunded_at") <= F.col("paid_at") + days(refund_window_days))
    )


def refunded_returns(returns_as_of: DataFrame, eligible_return_types: tuple[str, ...]) -> DataFrame:
    """The returns that are eligible as far as the return alone tells (SPEC §6): refunded, of an
    eligible type, with a refund time; whether the refund fell in the window is its order's."""
    return returns_as_of.filter(
        (F.col("status") == F.lit("refunded"))
        & F.col("return_type").isin(*eligible_return_types)
        & F.col("refunded_at").isNotNull()
    )


def unreversed_refunds(prior_ledger: DataFrame) -> DataFrame:
    """The refund rows of ``prior_ledger`` whose return has no reversal: what can still be reversed."""
    settled = prior_ledger.filter(F.col("entry_type") == F.lit(ENTRY_REFUND))
    reversed_ids = prior_ledger.filter(F.col("entry_type") == F.lit(ENTRY_REVERSAL)).select("return_id")
    return settled.join(reversed_ids, on="return_id", how="left_anti")


def reversal_entries(
    prior_ledger: DataFrame, returns_as_of: DataFrame, settlement_date: dt.date
) -> DataFrame:
    """Settled, not yet reversed returns whose latest status as of D is no longer ``refunded``.

    The reversal repeats the refund row with its own settlement date and the amount negated.
    """
    status_now = returns_as_of.select("return_id", F.col("status").alias("_status_now"))
    changed = (
        unreversed_refunds(prior_ledger)
        .join(status_now, on="return_id", how="inner")
        .filter(F.col("_status_now") != F.lit("refunded"))
    )
    return changed.select(
        *[
            F.lit(settlement_date).cast("date").alias(c)
            if c == "settlement_date"
            else F.lit(ENTRY_REVERSAL).alias(c)
            if c == "entry_type"
            else (-F.col(c)).alias(c)
            if c == "ad_fee_refund"
            else F.col(c)
            for c in LEDGER_COLUMNS
        ]
    ).select([F.col(f.name).cast(f.dataType) for f in LEDGER_SCHEMA.fields])


def refund_entries(
    eligible: DataFrame,
    prior_ledger: DataFrame,
    reversals: DataFrame,
    settlement_date: dt.date,
) -> DataFrame:
    """New refund rows of D: eligible returns never in the ledger, capped per order.

    ``x = round_half_up(fee * min(1, refund / pay), 2)``; per order, in ``(refunded_at,
    return_id)`` order, ``refund_i = min(C_i, cap) - min(C_{i-1}, cap)`` (see the module doc).
    """
    new = eligible.join(prior_ledger.select("return_id").distinct(), on="return_id", how="left_anti")
    already = (
        prior_ledger.select("order_id", "ad_fee_refund")
        .unionByName(reversals.select("order_id", "ad_fee_refund"))
        .groupBy("order_id")
        .agg(F.sum(to_fen(F.col("ad_fee_refund"))).cast(FEN).alias("_prior_fen"))
    )
    fen = new.join(already, on="order_id", how="left").select(
        "*",
        to_fen(F.coalesce(F.col("allocated_ad_fee"), F.lit(0))).alias("_fee_fen"),
        to_fen(F.col("refund_amount")).alias("_refund_fen"),
        to_fen(F.col("pay_amount")).alias("_pay_fen"),
    )
    # round_half_up(fee * refund / pay) in fen, for refund < pay: floor((2*fee*refund + pay) / (2*pay)).
    prorated = F.expr("(2 * _fee_fen * _refund_fen + _pay_fen) div (2 * _pay_fen)").cast(FEN)
    prorated = F.when(F.col("_refund_fen") >= F.col("_pay_fen"), F.col("_fee_fen")).otherwise(prorated)
    cap = F.greatest(F.lit(0).cast(FEN), F.col("_fee_fen") - F.coalesce(F.col("_prior_fen"), F.lit(0)))
    in_order = (
        Window.partitionBy("order_id")
        .orderBy(F.col("refunded_at").asc(), F.col("return_id").asc())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    with_x = fen.select("*", prorated.cast(FEN).alias("_x"), cap.cast(FEN).alias("_cap"))
    with_cum = with_x.select("*", F.sum("_x").over(in_order).cast(FEN).alias("_cum"))
    refund_fen = F.least(F.col("_cum"), F.col("_cap")) - F.least(F.col("_cum") - F.col("_x"), F.col("_cap"))
    return with_cum.select(
        *[
            F.lit(settlement_date).cast("date").alias(c)
            if c == "settlement_date"
            else F.lit(ENTRY_REFUND).alias(c)
            if c == "entry_type"
            else from_fen(refund_fen).alias(c)
            if c == "ad_fee_refund"
            else F.col(c)
            for c in LEDGER_COLUMNS
        ]
    ).select([F.col(f.name).cast(f.dataType) for f in LEDGER_SCHEMA.fields])


def ledger_entries_for_day(
    settlement_date: dt.date,
    *,
    orders: DataFrame,
    returns: DataFrame,
    traffic: DataFrame,
    ad_spend: DataFrame,
    prior_ledger: DataFrame,
    cfg: OnetrackConfig,
    ad_orders: Callable[[DataFrame], DataFrame] | None = None,
) -> DataFrame:
    """All ledger entries of ``settlement_date`` D (reversals and refunds), SPEC §6 columns.

    Inputs are the silver tables (only ``dt <= D`` is read; the returns as
    :func:`ledger_returns_as_of` bounds them) and the ledger (only ``settlement_date < D`` is
    read). Attribution and fees are those as of D: computed here from silver, or by ``ad_orders``
    when given: a function of a frame of ``order_id`` giving those of its orders that are ``ad``
    orders as of D, with ``allocated_ad_fee`` (as :func:`stored_ad_orders` reads them from the
    snapshots the finance assets wrote for D). It is asked only for the orders of the refunded
    returns (a few of the scope's orders): the snapshots' other rows are not joined.
    """
    D = settlement_date
    prior = prior_ledger.filter(F.col("settlement_date") < F.lit(D))
    # read three times (the refunded returns' orders, the reversals, the eligible returns): ranked once
    returns_now = ledger_returns_as_of(
        returns, prior, D, lookback_days=cfg.ledger_lookback_days
    ).localCheckpoint(eager=True)
    if ad_orders is not None:
        refunded_orders = materialize_small(
            refunded_returns(returns_now, tuple(cfg.eligible_return_types)).select("order_id").distinct()
        )
        ad_orders = ad_orders(refunded_orders)
    else:
        attribution = attribute_orders(
            orders,
            traffic,
            D,
            window_days=cfg.attribution_window_days,
            lookback_days=cfg.ledger_lookback_days,
        )
        ad_orders, _ = allocation_rows(
            attribution,
            ad_spend,
            D,
            lookback_days=cfg.ledger_lookback_days,
            passthrough=("merchant_id", "paid_at", "pay_amount"),
        )
    reversals = reversal_entries(prior, returns_now, D)
    eligible = eligible_returns(
        returns_now,
        ad_orders,
        refund_window_days=cfg.refund_window_days,
        eligible_return_types=tuple(cfg.eligible_return_types),
    )
    refunds = refund_entries(eligible, prior, reversals, D)
    return reversals.unionByName(refunds)


def ledger_returns_as_of(
    returns: DataFrame, prior_ledger: DataFrame, as_of_date: dt.date, *, lookback_days: int
) -> DataFrame:
    """The latest version as of D of every return the ledger can settle or reverse on D, without
    reading the returns' whole history: the returns landed since the scope's first paid date less
    a day, and the older versions of the returns settled and not reversed in ``prior_ledger``.

    Only orders paid in the scope (``[D - lookback_days, D]``) can be eligible, and a return
    happens after its order's payment, so every version of their returns landed on or after that
    day (the landing rule, ``LANDING_SLACK_DAYS``). A settled return may change any time later, so
    its versions are read from every landing date (a stale version landing late must not hide its
    latest one). The rows this gives for other returns (of orders paid before the scope, possibly
    not their latest version) match no order of the scope and are not settled, so neither
    :func:`eligible_returns` nor :func:`reversal_entries` uses them."""
    first_landing = scope_start(as_of_date, lookback_days) - dt.timedelta(days=LANDING_SLACK_DAYS)
    open_ids = unreversed_refunds(prior_ledger).select("return_id")
    recent = returns.filter(F.col("dt") >= F.lit(first_landing))
    older_settled = returns.filter(F.col("dt") < F.lit(first_landing)).join(
        open_ids, on="return_id", how="left_semi"
    )
    return latest_returns(recent.unionByName(older_settled), as_of_date)


def returns_out_of_scope(
    orders: DataFrame,
    returns: DataFrame,
    ledger: DataFrame,
    as_of_date: dt.date,
    cfg: OnetrackConfig,
) -> DataFrame:
    """Refunded returns of an eligible type, within the refund window, never in the ledger, whose
    order was paid before the lookback scope of D (``ledger_lookback_days``): they can no longer
    be settled. One row per return (``return_id, order_id, paid_at, refunded_at, dt``); expected
    empty, reported by a non-blocking check so that the lookback can be widened.

    Only returns whose latest version as of D landed on D are looked at: a return is reported on
    the day it lands in that state, and the returns and orders are read from landing dates the
    day's versions bound (so the check's cost does not grow with history). An order paid before
    the scope's first day had its refund window end before that day plus the window, so only
    returns refunded before then can be reported: on most days none are (a return lands soon
    after its refund), and then no order is read."""
    first_day = as_of_date - dt.timedelta(days=cfg.ledger_lookback_days)
    window_end = first_day + dt.timedelta(days=cfg.refund_window_days)
    landed = returns.filter(F.col("dt") == F.lit(as_of_date))
    landed_today = landed.select("return_id").distinct()
    # A version landed on D is its return's latest unless another is stamped later; a version
    # stamped on or after the earliest stamp of D's versions landed at most a day before that
    # stamp's date (the landing rule), so older landing partitions are not read.
    earliest_stamp = landed.agg(F.min(F.to_date("updated_at"))).first()[0]
    if earliest_stamp is not None:
        returns = returns.filter(F.col("dt") >= F.lit(earliest_stamp - dt.timedelta(days=LANDING_SLACK_DAYS)))
    candidates = (
        latest_returns(returns.join(landed_today, on="return_id", how="left_semi"), as_of_date)
        .filter(
            (F.col("dt") == F.lit(as_of_date))
            & (F.col("status") == F.lit("refunded"))
            & F.col("return_type").isin(*cfg.eligible_return_types)
            & F.col("refunded_at").isNotNull()
            & (F.to_date(F.col("refunded_at")) < F.lit(window_end))
        )
        .select("return_id", "order_id", "refunded_at", "dt")
        .localCheckpoint(eager=True)
    )
    # Only orders paid on or after (earliest candidate refund - refund window) can qualify; a
    # version stamped at or after that payment landed at most a day before it (LANDING_SLACK_DAYS),
    # so older landing partitions are not read (the scan stays bounded as history grows).
    earliest_refund = candidates.agg(F.min(F.to_date("refunded_at"))).first()[0]
    if earliest_refund is None:
        return candidates.select(
            "return_id", "order_id", F.lit(None).cast("timestamp").alias("paid_at"), "refunded_at", "dt"
        )
    first_landing = earliest_refund - dt.timedelta(days=cfg.refund_window_days + LANDING_SLACK_DAYS)
    orders = orders.filter(F.col("dt") >= F.lit(first_landing))
    their_orders = orders.join(candidates.select("order_id").distinct(), on="order_id", how="left_semi")
    paid = latest_orders(their_orders, as_of_date).filter(
        F.col("paid_at").isNotNull() & (F.to_date(F.col("paid_at")) < F.lit(first_day))
    )
    return (
        candidates.join(paid.select("order_id", "paid_at"), on="order_id", how="inner")
        .filter(F.col("refunded_at") <= F.col("paid_at") + days(cfg.refund_window_days))
        .join(ledger.select("return_id").distinct(), on="return_id", how="left_anti")
        .select("return_id", "order_id", "paid_at", "refunded_at", "dt")
    )


# ---------------------------------------------------------------------------------------------
# I/O: the orchestrator used by the Dagster asset.


def _date_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def read_silver(spark: SparkSession, cfg: OnetrackConfig) -> dict[str, DataFrame]:
    return {
        name: read_or_empty(spark, cfg.table_path("silver", name), SILVER_SCHEMAS[name])
        for name in SILVER_INPUTS
    }


ORDER_ATTRIBUTION_TABLE = ("finance", "order_attribution")
AD_FEE_ALLOCATION_TABLE = ("finance", "ad_fee_allocation")


def attribution_table(spark: SparkSession, cfg: OnetrackConfig) -> SnapshotTable:
    """``finance/order_attribution``: a versioned snapshot (:mod:`assets.snapshots`), one row per
    order, stored partitioned by ``paid_date`` (the scope's bound: a day leaving it is whole files)."""
    return SnapshotTable(
        spark,
        cfg,
        ORDER_ATTRIBUTION_TABLE,
        ORDER_ATTRIBUTION_SCHEMA,
        key="order_id",
        partition_by="paid_date",
        change_feed=True,  # gold/order_reexposure reads the keys each day changed
    )


def allocation_table(spark: SparkSession, cfg: OnetrackConfig) -> SnapshotTable:
    """``finance/ad_fee_allocation``: a versioned snapshot like the attribution, one row per
    :data:`ALLOCATION_KEY` (null ``order_id``: a campaign-day's unattributed spend), stored
    partitioned by ``stat_date`` (a campaign-day leaving the scope is whole files)."""
    return SnapshotTable(
        spark,
        cfg,
        AD_FEE_ALLOCATION_TABLE,
        AD_FEE_ALLOCATION_SCHEMA,
        key=ALLOCATION_KEY,
        partition_by="stat_date",
        null_safe_key=True,
    )


def stored_snapshot_dates(spark: SparkSession, cfg: OnetrackConfig) -> set[dt.date]:
    """``as_of`` dates for which both the attribution and the allocation snapshot are stored
    (from the version map, not the rows)."""
    return attribution_table(spark, cfg).dates() & allocation_table(spark, cfg).dates()


def stored_ad_orders(
    spark: SparkSession, cfg: OnetrackConfig, day: dt.date, order_ids: DataFrame | None = None
) -> DataFrame:
    """The ``ad`` orders as of ``day`` with their fee, from the stored snapshots of that day: the
    allocation's order rows with the attribution's ``merchant_id, paid_at, pay_amount`` (what
    :func:`ledger_entries_for_day` would compute from silver, without recomputing it).

    ``order_ids`` (a frame of ``order_id``, broadcast when small): only those orders; each
    snapshot is filtered by them before the two are joined, so neither is shuffled whole."""
    fees = allocation_table(spark, cfg).read(day).filter(F.col("order_id").isNotNull())
    attribution = attribution_table(spark, cfg).read(day)
    if order_ids is not None:
        fees = fees.join(order_ids, on="order_id", how="left_semi")
        attribution = attribution.join(order_ids, on="order_id", how="left_semi")
    orders = attribution.select("order_id", "merchant_id", "paid_at", "pay_amount")
    return fees.select("order_id", "campaign_id", "order_amount", "allocated_ad_fee").join(
        orders, on="order_id", how="inner"
    )


def computed_days(spark: SparkSession, cfg: OnetrackConfig) -> set[dt.date]:
    path = cfg.table_path(*LEDGER_DAYS_TABLE)
    if not table_exists(spark, path):
        return set()
    return {row[0] for row in spark.read.format("delta").load(path).select("settlement_date").collect()}


def read_ledger(spark: SparkSession, cfg: OnetrackConfig) -> DataFrame:
    return read_or_empty(spark, cfg.table_path(*LEDGER_TABLE), LEDGER_SCHEMA)


def ingested_days(spark: SparkSession, cfg: OnetrackConfig) -> set[dt.date] | None:
    """Landing dates whose silver ingestion ran for every source (``audit/ingest_audit`` has a row
    per (dt, source), also for a day with no file); ``None`` when there is no audit table."""
    path = cfg.table_path("audit", "ingest_audit")
    if not table_exists(spark, path):
        return None
    rows = (
        spark.read.format("delta")
        .load(path)
        .filter(F.col("source").isin(*SILVER_INPUTS))
        .groupBy("dt")
        .agg(F.countDistinct("source").alias("sources"))
        .filter(F.col("sources") == len(SILVER_INPUTS))
        .select("dt")
        .collect()
    )
    return {row[0] for row in rows}


def landed_days(
    silver: Mapping[str, DataFrame], through: dt.date, spark: SparkSession | None = None,
    cfg: OnetrackConfig | None = None,
) -> set[dt.date]:
    """Landing dates ``<= through`` with at least one silver row. With ``spark`` and ``cfg`` (the
    silver tables are those of the warehouse), from the tables' file lists: a distinct query of
    ``dt`` reads every row of the history (41M rows on day 17 at M)."""
    if spark is not None and cfg is not None:
        days = set()
        for name in SILVER_INPUTS:
            path = cfg.table_path("silver", name)
            if table_exists(spark, path):
                days |= partition_dates(spark, path, "dt")
        return {d for d in days if d <= through}
    frames = [silver[name].select("dt") for name in SILVER_INPUTS]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return {row[0] for row in union.filter(F.col("dt") <= F.lit(through)).distinct().collect()}


def _same_rows(a: DataFrame, b: DataFrame) -> bool:
    return a.exceptAll(b).isEmpty() and b.exceptAll(a).isEmpty()


def _replace_days(df: DataFrame, path: str, days_: list[dt.date]) -> None:
    """Overwrite exactly the settlement dates ``days_`` of a table partitioned by settlement_date."""
    predicate = "settlement_date IN (" + ", ".join(f"DATE'{d.isoformat()}'" for d in days_) + ")"
    (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .partitionBy("settlement_date")
        .save(path)
    )


def run_ledger_through(
    spark: SparkSession,
    cfg: OnetrackConfig,
    settlement_date: dt.date,
    *,
    silver: Mapping[str, DataFrame] | None = None,
) -> dict:
    """Bring the ledger up to settlement date D and (re)compute D.

    Every settlement date from ``cfg.partition_start`` before D that has not been computed yet is
    computed first, in date order (a date with no silver row landed that day has no entries: the
    state as of it equals the state as of the day before); then D. A day already in the ledger is
    recomputed and compared: identical entries are left as they are; different entries replace
    the day only if no later day was computed on top of it, otherwise :class:`LedgerDriftError`
    is raised before anything is written (ledger rows never change once later days depend on
    them). All new days are written in one Delta commit, then marked in ``finance/ledger_days``.

    Ledger rows never change once later days build on them, so a date is only computed once every
    landing date from ``partition_start`` up to it has been ingested (``audit/ingest_audit``):
    otherwise :class:`LandingNotIngestedError` is raised before anything is computed (run the
    ingestion of those dates first; e.g. a backfill run newest-first).

    ``silver`` overrides the silver tables read from ``cfg`` (name -> DataFrame; the ingestion
    guard is then the caller's business). Returns a summary: ``settlement_date, entries, refunds,
    reversals, ad_fee_refund, days_computed, days_written, rewritten, ledger_version``.
    """
    D = settlement_date
    start = dt.date.fromisoformat(cfg.partition_start)
    if silver is None:
        ingested = ingested_days(spark, cfg)
        missing = [d for d in _date_range(start, D) if ingested is not None and d not in ingested]
        if missing:
            raise LandingNotIngestedError(
                f"The refund ledger for {D} needs every landing date from {start} ingested first; "
                f"not ingested (for every source): {', '.join(d.isoformat() for d in missing[:10])}"
                + (" ..." if len(missing) > 10 else "")
            )
    inputs = dict(silver) if silver is not None else read_silver(spark, cfg)
    # The attribution and fees as of a day are read from the finance snapshots of that day when
    # they are stored (the assets upstream of the ledger wrote them from the same silver), else
    # computed from silver; with ``silver`` given, always computed.
    snapshots = stored_snapshot_dates(spark, cfg) if silver is None else set()
    ledger_path = cfg.table_path(*LEDGER_TABLE)
    days_path = cfg.table_path(*LEDGER_DAYS_TABLE)
    done = computed_days(spark, cfg)
    todo = [d for d in _date_range(start, D - dt.timedelta(days=1)) if d not in done] + [D]
    landed = landed_days(inputs, D) if silver is not None else landed_days(inputs, D, spark, cfg)
    stored = read_ledger(spark, cfg)
    # Rows of a day not marked computed (a crash between the two writes) are not part of the ledger.
    settled = stored.filter(F.col("settlement_date").isin(sorted(done))) if done else stored.limit(0)
    empty = spark.createDataFrame([], LEDGER_SCHEMA)

    new_entries: dict[dt.date, DataFrame] = {}
    counts: dict[dt.date, int] = {}
    rewritten = False
    for day in todo:
        first_day = day <= start
        has_input = any(d <= day for d in landed) if first_day else day in landed
        if has_input:
            prior = settled.filter(F.col("settlement_date") < F.lit(day))
            for earlier in new_entries.values():
                prior = prior.unionByName(earlier)
            entries = ledger_entries_for_day(
                day,
                orders=inputs["orders"],
                returns=inputs["returns"],
                traffic=inputs["traffic"],
                ad_spend=inputs["ad_spend"],
                prior_ledger=prior,
                cfg=cfg,
                ad_orders=partial(stored_ad_orders, spark, cfg, day) if day in snapshots else None,
            ).localCheckpoint(eager=True)
        else:
            entries = empty
        if day in done:
            if _same_rows(entries, settled.filter(F.col("settlement_date") == F.lit(day))):
                continue
            later = sorted(d for d in done if d > day)
            if later:
                raise LedgerDriftError(
                    f"Recomputing settlement date {day} gives other ledger entries than those stored, "
                    f"and later settlement dates ({later[0]} .. {later[-1]}) build on them. Ledger rows "
                    "never change once settled; investigate the silver inputs landed by that date."
                )
            rewritten = True
        new_entries[day] = entries
        counts[day] = entries.count() if has_input else 0

    if new_entries:
        written = sorted(new_entries)
        union = empty
        for entries in new_entries.values():
            union = union.unionByName(entries)
        _replace_days(union, ledger_path, written)
        markers = spark.createDataFrame(
            [(d, counts[d]) for d in written], "settlement_date date, entries long"
        ).select("settlement_date", "entries", F.current_timestamp().alias("computed_at"))
        _replace_days(markers, days_path, written)

    day_rows = read_ledger(spark, cfg).filter(F.col("settlement_date") == F.lit(D))
    summary = day_rows.agg(
        F.count(F.lit(1)).alias("entries"),
        F.sum(F.when(F.col("entry_type") == ENTRY_REFUND, 1).otherwise(0)).alias("refunds"),
        F.sum(F.when(F.col("entry_type") == ENTRY_REVERSAL, 1).otherwise(0)).alias("reversals"),
        F.sum("ad_fee_refund").alias("ad_fee_refund"),
    ).first()
    total = summary["ad_fee_refund"]
    return {
        "settlement_date": D.isoformat(),
        "entries": int(summary["entries"]),
        "refunds": int(summary["refunds"] or 0),
        "reversals": int(summary["reversals"] or 0),
        "ad_fee_refund": f"{total:.2f}" if total is not None else "0.00",
        "days_computed": [d.isoformat() for d in todo if d not in done or d in new_entries],
        "days_written": [d.isoformat() for d in sorted(new_entries)],
        "rewritten": rewritten,
        "ledger_version": table_version(spark, ledger_path) if table_exists(spark, ledger_path) else None,
    }
