"""One SparkSession for the whole test run (starting one costs ~8 s)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os

import pytest

from pipelines.config import OnetrackConfig

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
# The Dagster SparkResource reuses the test session (getOrCreate); keep its runtime settings small.
os.environ.setdefault("ONETRACK_SPARK_SHUFFLE_PARTITIONS", "2")


@pytest.fixture(scope="session")
def spark():
    from pipelines.spark import build_spark_session

    session = build_spark_session(
        app_name="onetrack-tests",
        master="local[2]",
        driver_memory="3g",
        shuffle_partitions=2,
        conf={"spark.default.parallelism": "2", "spark.sql.adaptive.enabled": "false"},
    )
    yield session
    session.stop()


E2E_DAYS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]


@pytest.fixture(scope="session")
def pipeline(spark, tmp_path_factory):
    """One generated landing zone (every fault injected) run through the Dagster job, shared by
    every end-to-end test: ``{"ok", "log", "cfg", "root"}``."""
    root = tmp_path_factory.mktemp("e2e")
    with onetrack_roots(root):
        from pipelines.cli import run_days
        from pipelines.generate import generate_landing

        first, last = E2E_DAYS[0], E2E_DAYS[-1]
        generate_landing(root / "landing", first, last, orders_per_day=120, seed=11, faults=True)
        log: list[str] = []
        ok = run_days(E2E_DAYS, log=log.append)
        cfg = OnetrackConfig.from_env()
        yield {"ok": ok, "log": log, "cfg": cfg, "root": root}


@contextlib.contextmanager
def onetrack_roots(root):
    """Landing, warehouse, settlement roots and the Dagster instance under ``root`` (through the
    environment, as a user would configure them), restored afterwards."""
    env = {
        "ONETRACK_LANDING_DIR": str(root / "landing"),
        "ONETRACK_WAREHOUSE_DIR": str(root / "warehouse"),
        "ONETRACK_SETTLEMENT_DIR": str(root / "settlements"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
