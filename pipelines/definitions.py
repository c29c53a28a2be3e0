"""The Dagster code location: collects assets, checks, resources, jobs, schedules and sensors."""

from dagster import Definitions, in_process_executor

from assets.finance.assets import FINANCE_ASSETS
from assets.ingest.assets import INGEST_ASSETS
from assets.ingest.freshness import LANDED_CHECKS
from assets.kpi.assets import KPI_ASSETS
from assets.serving.assets import SERVING_ASSETS
from pipelines.backfill import with_backfill_policy
from pipelines.jobs import daily_job
from pipelines.maintenance import maintenance_job, maintenance_schedule
from pipelines.resources import default_resources
from pipelines.schedules import daily_schedule
from pipelines.sensors import landing_sensor

# One run per day for backfills too (BackfillPolicy.multi_run(1)): why in pipelines/backfill.py.
ALL_ASSETS = with_backfill_policy([*INGEST_ASSETS, *FINANCE_ASSETS, *KPI_ASSETS, *SERVING_ASSETS])

defs = Definitions(
    assets=ALL_ASSETS,
    asset_checks=LANDED_CHECKS,  # <source>_landed: missing landing data (assets/ingest/freshness.py)
    jobs=[daily_job, maintenance_job],
    schedules=[daily_schedule, maintenance_schedule],
    sensors=[landing_sensor],
    resources=default_resources(),
    # One process per run, so one SparkSession (~8 s to start) serves every step of it; the
    # multiprocess default would start a JVM per step.
    executor=in_process_executor,
)
