"""Missing landing data flagged: the WARN check ``bronze/<source>:<source>_landed``.

Landing zone of the Dagster test (source orders):
  dt=2026-11-02  part-0001.jsonl (2 records) + readme.txt (not a .jsonl name: unreadable) -> passes
  dt=2026-11-03  only notes.txt (unreadable)                                            -> warns
  dt=2026-11-04  no folder                                                               -> warns
Each day is materialized in its own run (bronze/orders + the check), as a backfill would.
"""

import datetime as dt
import json

import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, materialize
from pyspark.sql import SparkSession

from assets.ingest.assets import INGEST_ASSETS
from assets.ingest.freshness import LANDED_CHECKS, landed_check_result, landing_figures
from pipelines.resources import OnetrackSettings, SparkResource
from tests.ingest.helpers import order

DAY = dt.date(2026, 11, 3)


def test_figures_of_a_folder():
    files = [
        {"source_file": "orders/dt=2026-11-03/b.jsonl", "status": "accepted", "error": None, "records": 7},
        {"source_file": "orders/dt=2026-11-03/z.txt", "status": "quarantined", "error": "file:unreadable: x", "records": None},
        {"source_file": "orders/dt=2026-11-03/a.jsonl", "status": "accepted", "error": None, "records": 3},
        {"source_file": "orders/dt=2026-11-03/c.jsonl", "status": "quarantined", "error": "json:bad", "records": 4},
    ]
    assert landing_figures(files) == {
        "passed": True,
        "files_landed": 4,
        "files_readable": 2,
        "files_unreadable": 2,
        "records_in_readable_files": 10,
        "unreadable_files": ["orders/dt=2026-11-03/c.jsonl: json:bad", "orders/dt=2026-11-03/z.txt: file:unreadable: x"],
    }
    only_bad = landing_figures(files[1:2] + files[3:])
    assert (only_bad["passed"], only_bad["files_readable"], only_bad["records_in_readable_files"]) == (False, 0, 0)
    empty = landing_figures([])
    assert (empty["passed"], empty["files_landed"]) == (False, 0)


def test_result_is_a_warning_with_its_figures():
    result = landed_check_result("returns", DAY, "/l/returns/dt=2026-11-03", [])
    assert not result.passed
    assert result.severity == AssetCheckSeverity.WARN
    assert result.description == "no returns files landed for dt=2026-11-03"
    assert result.metadata["files_landed"].value == 0
    assert result.metadata["landing_folder"].value == "/l/returns/dt=2026-11-03"
    assert result.metadata["unreadable_files"].value == "_none_"
    bad = {"source_file": "returns/dt=2026-11-03/x.txt", "status": "quarantined", "error": "e", "records": None}
    result = landed_check_result("returns", DAY, "/l", [bad])
    assert result.description == "1 returns file(s) landed for dt=2026-11-03, none readable"
    assert result.metadata["unreadable_files"].value == "- `returns/dt=2026-11-03/x.txt: e`"


def test_one_check_per_source_on_its_bronze_asset():
    keys = sorted(key.to_user_string() for check in LANDED_CHECKS for key in check.check_keys)
    assert keys == [
        "bronze/ad_spend:ad_spend_landed",
        "bronze/orders:orders_landed",
        "bronze/returns:returns_landed",
        "bronze/traffic:traffic_landed",
    ]
    assert all(check.partitions_def is not None for check in LANDED_CHECKS)


class SessionOfTheTests(SparkResource):
    def get_session(self):
        return SparkSession.getActiveSession()


@pytest.mark.slow
def test_check_in_runs_of_old_partitions(spark, tmp_path):
    landing = tmp_path / "landing" / "orders"
    (landing / "dt=2026-11-02").mkdir(parents=True)
    lines = [order(order_id="o1"), order(order_id="o2", paid_at="2026-11-02T11:00:00+08:00")]
    (landing / "dt=2026-11-02" / "part-0001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (landing / "dt=2026-11-02" / "readme.txt").write_text("not data\n")
    (landing / "dt=2026-11-03").mkdir()
    (landing / "dt=2026-11-03" / "notes.txt").write_text("not data\n")

    bronze_orders = next(a for a in INGEST_ASSETS if AssetKey(["bronze", "orders"]) in a.keys)
    check = next(c for c in LANDED_CHECKS if any(k.name == "orders_landed" for k in c.check_keys))
    resources = {
        "spark": SessionOfTheTests(),
        "settings": OnetrackSettings(
            landing_dir=str(tmp_path / "landing"), warehouse_dir=str(tmp_path / "warehouse")
        ),
    }
    instance = DagsterInstance.ephemeral()

    def run(day: str):
        result = materialize(
            [bronze_orders, check], partition_key=day, resources=resources, instance=instance, raise_on_error=False
        )
        evaluations = [
            e.event_specific_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == "orders_landed"
        ]
        assert len(evaluations) == 1, day
        return evaluations[0]

    landed = run("2026-11-02")
    assert landed.passed and landed.severity == AssetCheckSeverity.WARN
    meta = {k: v.value for k, v in landed.metadata.items()}
    assert (meta["files_landed"], meta["files_readable"], meta["files_unreadable"]) == (2, 1, 1)
    assert meta["records_in_readable_files"] == 2
    assert "orders/dt=2026-11-02/readme.txt: file:unreadable" in meta["unreadable_files"]

    unreadable = run("2026-11-03")
    assert not unreadable.passed and unreadable.severity == AssetCheckSeverity.WARN
    assert unreadable.description == "1 orders file(s) landed for dt=2026-11-03, none readable"

    missing = run("2026-11-04")
    assert not missing.passed
    assert missing.description == "no orders files landed for dt=2026-11-04"
    assert missing.metadata["files_landed"].value == 0
    assert missing.metadata["landing_folder"].value == f"{tmp_path / 'landing'}/orders/dt=2026-11-04"
    # each evaluation is recorded for its own partition (the UI shows the status per day)
    assert (landed.partition, unreadable.partition, missing.partition) == ("2026-11-02", "2026-11-03", "2026-11-04")
