"""Backfills: one run per day for every asset, and an instance that runs them one at a time with the
ledger pool limited to one slot (pipelines/backfill.py, pipelines/instance.py)."""

from __future__ import annotations

import warnings

import yaml
from dagster import BackfillPolicy, DagsterInstance

from assets.finance.assets import AD_FEE_REFUND_LEDGER, ORDER_ATTRIBUTION
from assets.kpi.assets import ORDER_REEXPOSURE
from pipelines.definitions import defs
from pipelines.instance import LEDGER_POOL, SNAPSHOT_POOL, missing_settings, write_instance_settings

EXPECTED = {
    "telemetry": {"enabled": False},
    "concurrency": {"pools": {"default_limit": 1}, "runs": {"max_concurrent_runs": 1}},
}


def test_every_asset_backfills_one_day_per_run():
    graph = defs.resolve_asset_graph()
    policies = {key.to_user_string(): graph.get(key).backfill_policy for key in graph.executable_asset_keys}
    for key in ("bronze/orders", "silver/orders", "finance/ad_fee_refund_ledger", "gold/kpi_daily"):
        assert policies[key] == BackfillPolicy.multi_run(1)
    assert set(policies.values()) == {BackfillPolicy.multi_run(1)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "materializes assets with varying BackfillPolicies"
        job = defs.resolve_job_def("onetrack_daily")
    assert job.partitions_def is not None


def test_the_ledger_and_the_versioned_snapshots_are_the_pools_the_instance_limits():
    graph = defs.resolve_asset_graph()
    assert graph.get(AD_FEE_REFUND_LEDGER).pools == {LEDGER_POOL}
    assert graph.get(ORDER_ATTRIBUTION).pools == {SNAPSHOT_POOL}
    assert graph.get(ORDER_REEXPOSURE).pools == {SNAPSHOT_POOL}
    pools = {pool for key in graph.executable_asset_keys for pool in (graph.get(key).pools or ())}
    assert pools == {LEDGER_POOL, SNAPSHOT_POOL}  # default_limit: 1 applies to these pools only


def test_missing_settings_keep_explicit_choices():
    assert missing_settings(None) == EXPECTED
    assert missing_settings({"telemetry": {"enabled": True}}) == {"concurrency": EXPECTED["concurrency"]}
    # the older run queue config is incompatible with concurrency.runs: only the pool limit is added
    assert missing_settings({"run_queue": {"max_concurrent_runs": 3}})["concurrency"] == {"pools": {"default_limit": 1}}
    assert missing_settings({"telemetry": {}, "concurrency": {"runs": {"max_concurrent_runs": 4}}}) == {}


def test_write_creates_or_completes_the_instance_yaml(tmp_path):
    fresh = tmp_path / "fresh" / "dagster.yaml"
    fresh.parent.mkdir()
    assert write_instance_settings(fresh) == EXPECTED
    assert yaml.safe_load(fresh.read_text()) == EXPECTED
    assert write_instance_settings(fresh) == {}  # idempotent

    old = tmp_path / "old" / "dagster.yaml"
    old.parent.mkdir()
    old.write_text("# written by an earlier onetrack\ntelemetry:\n  enabled: false")
    assert write_instance_settings(old) == {"concurrency": EXPECTED["concurrency"]}
    assert old.read_text().startswith("# written by an earlier onetrack\ntelemetry:\n  enabled: false\nconcurrency:")
    assert yaml.safe_load(old.read_text()) == EXPECTED


def test_dagster_reads_the_settings(tmp_path):
    write_instance_settings(tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 1
        assert instance.global_op_concurrency_default_limit == 1
        # the first claim of the ledger pool initializes it to the default: one slot
        instance.event_log_storage.initialize_concurrency_limit_to_default(LEDGER_POOL)
        assert instance.event_log_storage.get_concurrency_info(LEDGER_POOL).slot_count == 1
    finally:
        instance.dispose()
