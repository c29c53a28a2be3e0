"""The daily schedule: at 02:00 Asia/Shanghai, the previous landing day through every asset."""

import os

from dagster import build_schedule_from_partitioned_job

from pipelines.jobs import daily_job

daily_schedule = build_schedule_from_partitioned_job(
    daily_job,
    hour_of_day=int(os.environ.get("ONETRACK_SCHEDULE_HOUR", "2")),
    minute_of_hour=int(os.environ.get("ONETRACK_SCHEDULE_MINUTE", "0")),
    name="onetrack_daily_schedule",
    description="Materializes yesterday's landing partition of every asset, in dependency order.",
)
