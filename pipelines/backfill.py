"""The backfill policy of every daily partitioned asset: one run per day (``multi_run(1)``).

Why not ``single_run()``: every asset computes one landing date ``D`` (``partition_date`` reads
``context.partition_key``) under the as-of rule (a day sees only ``dt <= D``); a run over a range
would need every asset to loop over its days in order. One run per day is also what ``onetrack
run`` and the schedule do, so a backfill gives the same tables, and a bad day fails alone: its
run stops at its critical checks, the earlier days are done and can be seen, and "Failed and
missing" re-runs only that day. The price is one SparkSession start-up (~8 s) per day, small next
to the 1.5-3 minutes a day takes.

All assets get the same policy, because Dagster puts a parent and a child into the same backfill
run only when their policies are equal (so a backfill of every asset is one run per day, all
assets and checks of that day in it), and it submits the runs of a range in partition order; the
instance's run queue (``pipelines/instance.py``, ``max_concurrent_runs: 1``) then starts them one
at a time, oldest first.

The policy is set here, on the assembled definitions, the way Dagster's own
``load_assets_from_modules(backfill_policy=...)`` does it (``AssetsDefinition.with_attributes``),
so the asset modules stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetsDefinition, BackfillPolicy

DAILY_BACKFILL_POLICY = BackfillPolicy.multi_run(1)


def with_backfill_policy(assets: Iterable, policy: BackfillPolicy = DAILY_BACKFILL_POLICY) -> list:
    """``assets`` with ``policy`` on every partitioned asset definition (others unchanged)."""
    return [
        a.with_attributes(backfill_policy=policy)
        if isinstance(a, AssetsDefinition) and a.partitions_def is not None
        else a
        for a in assets
    ]
