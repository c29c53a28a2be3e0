"""Finance tests share the session-scoped ``spark`` fixture of ``tests/conftest.py``."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def small_delta(spark):
    """Delta snapshot state in 2 partitions instead of 50: tiny tables read much faster."""
    key = "spark.databricks.delta.snapshotPartitions"
    previous = spark.conf.get(key, None)
    spark.conf.set(key, "2")
    yield spark
    if previous is None:
        spark.conf.unset(key)
    else:
        spark.conf.set(key, previous)
