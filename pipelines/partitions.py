"""The one partitioning of onetrack: a landing date ``dt`` per day, in Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
import os

from dagster import DailyPartitionsDefinition

from pipelines.config import BUSINESS_TZ

PARTITION_START = os.environ.get("ONETRACK_PARTITION_START", "2026-11-01")

daily_partitions = DailyPartitionsDefinition(
    start_date=PARTITION_START,
    timezone=BUSINESS_TZ,
    fmt="%Y-%m-%d",
)


def partition_date(context) -> dt.date:
    """The landing date ``D`` of the partition an asset or check is running for."""
    return dt.date.fromisoformat(context.partition_key)
