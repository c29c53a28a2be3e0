"""Jobs: one daily job that materializes every asset and check of a landing date."""

from dagster import define_asset_job, in_process_executor

from pipelines.partitions import daily_partitions

daily_job = define_asset_job(
    "onetrack_daily",
    selection="*",
    partitions_def=daily_partitions,
    description="Every asset and check of onetrack for one landing date, in dependency order.",
    executor_def=in_process_executor,
)
