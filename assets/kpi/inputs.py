"""The inputs of the executive path, as they stand on run date ``D`` (SPEC §1 as-of rule).

Each function takes a whole table (every landing date, every snapshot) and returns what a run for
``D`` may see, so the KPI functions can be fed raw tables and still be deterministic on reruns.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from assets.storage import LANDING_SLACK_DAYS, RESTATEMENT_ORDER, VERSION_ORDER, as_of, latest_version


def returns_as_of(
    silver_returns: DataFrame, as_of_date: dt.date, first_paid_date: dt.date | None = None
) -> DataFrame:
    """Latest version of every return known as of ``D`` (any status, any type).

    With ``first_paid_date``: only the returns of orders paid on or after it are needed. Every
    version of such a return happened after the payment, and a record cannot land more than a
    day before it happened, so the landing partitions before that day less a day are not read
    (the scan stays within the window as history grows).
    """
    if first_paid_date is not None:
        silver_returns = silver_returns.filter(
            F.col("dt") >= F.lit(first_paid_date - dt.timedelta(days=LANDING_SLACK_DAYS))
        )
    return latest_version(as_of(silver_returns, as_of_date), ["return_id"], VERSION_ORDER)


def ad_spend_as_of(
    silver_ad_spend: DataFrame, as_of_date: dt.date, first_stat_date: dt.date | None = None
) -> DataFrame:
    """Hourly ad-spend rows after restatement: one row per (stat_date, stat_hour, campaign_id),
    for stat_dates from ``first_stat_date`` on (all when None). stat_date is part of the key, so
    the filter goes before the ranking: same rows, and only the window's rows are sorted."""
    rows = as_of(silver_ad_spend, as_of_date)
    if first_stat_date is not None:
        # a row cannot land more than a day before its stat_date: older partitions are not read
        rows = rows.filter(
            (F.col("stat_date") >= F.lit(first_stat_date))
            & (F.col("dt") >= F.lit(first_stat_date - dt.timedelta(days=LANDING_SLACK_DAYS)))
        )
    return latest_version(rows, ["stat_date", "stat_hour", "campaign_id"], RESTATEMENT_ORDER)


def traffic_as_of(silver_traffic: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Traffic events landed by ``D``. Silver holds each ``event_id`` once (repeats are duplicates)."""
    return as_of(silver_traffic, as_of_date)


def snapshot(df: DataFrame, as_of_date: dt.date, column: str = "as_of") -> DataFrame:
    """The ``as_of = D`` partition of a finance or gold table."""
    return df.filter(F.col(column) == F.lit(as_of_date))


def ledger_as_of(ledger: DataFrame, as_of_date: dt.date) -> DataFrame:
    """Ledger entries settled on or before ``D`` (settled rows never change afterwards)."""
    return ledger.filter(F.col("settlement_date") <= F.lit(as_of_date))
