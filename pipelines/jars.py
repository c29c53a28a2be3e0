"""Resolve the Delta jars from Maven Central into the local cache, once, at set-up.

Later sessions put the cached jars on ``spark.jars`` and need no network.
"""

from __future__ import annotations

import os
import sys

from pipelines.spark import DELTA_PACKAGES, cached_jars, jars_dir


def resolve() -> list[str]:
    if cached_jars():
        return cached_jars()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    target = jars_dir()
    target.mkdir(parents=True, exist_ok=True)
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("onetrack-resolve-jars")
        .config("spark.jars.packages", ",".join(DELTA_PACKAGES))
        .config("spark.jars.ivy", str(target))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.stop()
    jars = cached_jars()
    if not jars:
        raise SystemExit(f"Delta jars were not resolved into {target}/jars")
    return jars


if __name__ == "__main__":
    for jar in resolve():
        print(jar)
    sys.exit(0)
