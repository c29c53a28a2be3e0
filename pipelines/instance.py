"""The settings onetrack needs in the Dagster instance (``$DAGSTER_HOME/dagster.yaml``).

- ``concurrency.runs.max_concurrent_runs: 1``: the run queue (used by ``dagster dev``'s daemon for
  backfills, the schedule and the landing sensor) starts one run at a time, oldest first, so the
  one-run-per-day runs of a backfill (``BackfillPolicy.multi_run(1)``, submitted in date order)
  execute in date order, and two SparkSessions never compete for the 2 cores.
- ``concurrency.pools.default_limit: 1``: every pool without an explicit limit gets 1 slot; the
  pools are ``onetrack_finance_ledger`` (the ledger step) and ``onetrack_finance_snapshots`` (the
  steps of the versioned snapshots: attribution, allocation, re-exposure), so two such steps
  never run at once, even when runs do run in parallel (e.g. ``onetrack run`` next to a UI run,
  or a raised ``max_concurrent_runs``).

An existing ``dagster.yaml`` is only appended to, for top-level keys it does not have (comments
and explicit choices are kept); a file that already configures the run queue the older way
(``run_queue`` / ``run_coordinator``) gets no ``concurrency.runs``, which Dagster would reject.
"""

from __future__ import annotations

from pathlib import Path

import yaml

LEDGER_POOL = "onetrack_finance_ledger"
# finance/order_attribution, finance/ad_fee_allocation and gold/order_reexposure: versioned
# snapshots, tables whose versions are the days (assets/snapshots.py); their writes must not
# interleave.
SNAPSHOT_POOL = "onetrack_finance_snapshots"
MAX_CONCURRENT_RUNS = 1
POOL_DEFAULT_LIMIT = 1


def missing_settings(existing: dict | None) -> dict:
    """The top-level blocks onetrack adds to an instance configuration ``existing``."""
    existing = existing or {}
    add: dict = {}
    if "telemetry" not in existing:
        add["telemetry"] = {"enabled": False}
    if "concurrency" not in existing:
        concurrency: dict = {"pools": {"default_limit": POOL_DEFAULT_LIMIT}}
        if "run_queue" not in existing and "run_coordinator" not in existing:
            concurrency["runs"] = {"max_concurrent_runs": MAX_CONCURRENT_RUNS}
        add["concurrency"] = concurrency
    return add


def write_instance_settings(path: str | Path) -> dict:
    """Create or complete ``dagster.yaml`` at ``path``; returns the blocks it appended."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    add = missing_settings(yaml.safe_load(text) if text.strip() else None)
    if add:
        block = yaml.safe_dump(add, sort_keys=False)
        path.write_text(text + ("" if not text or text.endswith("\n") else "\n") + block)
    return add
