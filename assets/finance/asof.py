"""Silver as of a landing date D (SPEC §1 as-of rule), and the small money helpers of finance.

Money is computed in whole fen (DECIMAL(38,0)) so that every split and rounding is exact; it is
turned back into DECIMAL(18,2) only at the end.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from assets.finance.schemas import MONEY
from assets.kpi.inputs import ad_spend_as_of
from assets.storage import VERSION_ORDER, as_of, latest_version

FEN = "decimal(38,0)"


def business_date(ts: Column) -> Column:
    """The business day of an instant: the session time zone is Asia/Shanghai (DESIGN.md)."""
    return F.to_date(ts)


def days(n: int) -> Column:
    """A day-time interval of ``n`` days (Asia/Shanghai has no DST, so 1 day = 24 h)."""
    return F.make_dt_interval(F.lit(int(n)))


def to_fen(amount: Column) -> Column:
    """DECIMAL(18,2) yuan -> exact whole fen as DECIMAL(38,0)."""
    return (amount.cast("decimal(20,2)") * F.lit(100)).cast(FEN)


def from_fen(fen: Column) -> Column:
    """Whole fen -> DECIMAL(18,2) yuan (exact: a multiplication by 0.01)."""
    return (fen.cast("decimal(20,0)") * F.lit(Decimal("0.01"))).cast(MONEY)


def latest_orders(orders: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Latest version of every order as of ``as_of_date`` (SPEC §2 tie rule)."""
    return latest_version(as_of(orders, as_of_date), ["order_id"], VERSION_ORDER)


def latest_returns(returns: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Latest version of every return as of ``as_of_date``."""
    return latest_version(as_of(returns, as_of_date), ["return_id"], VERSION_ORDER)


def campaign_day_spend(
    ad_spend: DataFrame, as_of_date: dt.date, first_stat_date: dt.date | None = None
) -> DataFrame:
    """SPEC §5 ``spend(c, d)``: restated hourly rows (latest dt, file, line) summed over hours.

    One row per ``(stat_date, campaign_id)`` with ``advertiser_id`` (the largest one if a campaign
    reported several, to stay deterministic) and ``campaign_spend``; stat_dates in
    ``[first_stat_date, as_of_date]``.
    """
    # the hourly rows after restatement, from the landing partitions the window can be in
    hourly = ad_spend_as_of(ad_spend, as_of_date, first_stat_date).filter(
        F.col("stat_date") <= F.lit(as_of_date)
    )
    return (
        hourly.groupBy("stat_date", "campaign_id")
        .agg(
            F.max("advertiser_id").alias("advertiser_id"),
            F.sum("spend").cast(MONEY).alias("campaign_spend"),
        )
        .select("stat_date", "campaign_id", "advertiser_id", "campaign_spend")
    )


def scope_start(as_of_date: dt.date, lookback_days: int) -> dt.date:
    """First paid date (and stat_date) in the scope of a run for ``as_of_date`` (DESIGN.md)."""
    return as_of_date - dt.timedelta(days=lookback_days)
