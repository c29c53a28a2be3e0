"""One SparkSession for the whole test run (starting one costs ~8 s)."""

from __future__ import annotations

import os

import pytest

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
