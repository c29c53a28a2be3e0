"""The Dagster code location: collects assets, checks, resources, jobs, schedules and sensors."""

from __future__ import annotations

from dagster import Definitions, define_asset_job

from assets.ingest.assets import INGEST_ASSETS
from pipelines.partitions import daily_partitions
from pipelines.resources import default_resources

ALL_ASSETS = [*INGEST_ASSETS]

daily_job = define_asset_job(
    "onetrack_daily",
    selection="*",
    partitions_def=daily_partitions,
    description="Every asset and check of onetrack for one landing date, in dependency order.",
)

defs = Definitions(
    assets=ALL_ASSETS,
    jobs=[daily_job],
    resources=default_resources(),
)
