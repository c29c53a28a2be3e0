"""Build the one SparkSession of a process, with Delta configured.

Settings come from the environment so that local runs, CI and a cluster differ only by
configuration:

- ``ONETRACK_SPARK_MASTER``: ``local[*]`` (default), ``spark://host:7077``, ``k8s://...``
- ``ONETRACK_SPARK_REMOTE``: ``sc://host:15002`` to use Spark Connect instead of a master
- ``ONETRACK_SPARK_CONF``: extra settings, JSON object or ``key=value;key=value``
- ``ONETRACK_SPARK_DRIVER_MEMORY`` (default ``4g``), ``ONETRACK_SPARK_SHUFFLE_PARTITIONS`` (default 8)
- ``ONETRACK_JARS_DIR``: the local cache of the Delta jars resolved from Maven Central at set-up
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
from pathlib import Path

from pipelines.config import BUSINESS_TZ, REPO_ROOT

DELTA_VERSION = "4.4.0"
SPARK_BINARY = "4.1"
DELTA_PACKAGES = (
    f"io.delta:delta-spark_{SPARK_BINARY}_2.13:{DELTA_VERSION}",
    f"io.delta:delta-storage:{DELTA_VERSION}",
)
DEFAULT_IVY_DIR = REPO_ROOT / ".cache" / "ivy"


def jars_dir() -> Path:
    return Path(os.environ.get("ONETRACK_JARS_DIR") or DEFAULT_IVY_DIR)


def _artifact(jar_name: str) -> str:
    """``org.apache.parquet_parquet-column-1.16.0.jar`` -> ``parquet-column``."""
    base = jar_name.rsplit("/", 1)[-1].split("_", 1)[-1]
    return re.sub(r"-\d[\w.\-]*\.jar$", "", base)


def cached_jars() -> list[str]:
    """The resolved Delta jars, minus artifacts that Spark already ships in pyspark/jars.

    Ivy also pulls Delta's transitive dependencies (Hadoop, Parquet, Jackson, log4j); Spark's own
    copies must win, so only what Spark lacks goes on ``spark.jars``.
    """
    import pyspark

    spark_jars = Path(pyspark.__file__).parent / "jars"
    shipped = {_artifact(p.name) for p in spark_jars.glob("*.jar")}
    found = sorted(glob.glob(str(jars_dir() / "jars" / "*.jar")))
    return [jar for jar in found if _artifact(Path(jar).name) not in shipped]


def parse_conf(raw: str | None) -> dict[str, str]:
    """``{"k": "v"}`` or ``k=v;k2=v2`` into a dict."""
    if not raw:
        return {}
    raw = raw.strip()
    if raw.startswith("{"):
        return {str(k): str(v) for k, v in json.loads(raw).items()}
    pairs = [p for p in raw.split(";") if p.strip()]
    return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}


def base_conf(
    *,
    driver_memory: str | None = None,
    shuffle_partitions: int | None = None,
    ui: bool = False,
) -> dict[str, str]:
    partitions = str(shuffle_partitions or os.environ.get("ONETRACK_SPARK_SHUFFLE_PARTITIONS", "8"))
    return {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": BUSINESS_TZ,
        "spark.driver.memory": driver_memory or os.environ.get("ONETRACK_SPARK_DRIVER_MEMORY", "4g"),
        "spark.sql.shuffle.partitions": partitions,
        # Tasks of a parallel file listing (Delta's VACUUM lists the table's directory with it).
        # Spark's default, 10000, is sized for a large cluster: on 2 cores it turned a VACUUM of a
        # 3-file table into 40-90 s (14-21 s with this). Overridable like every setting here.
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": partitions,
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.ui.enabled": "true" if ui else "false",
        "spark.sql.ansi.enabled": "true",
        # The parts of a union stay separate partitions (so separate files when written:
        # assets.storage.split_by_value relies on it). Spark 4 otherwise gives a union whose
        # parts share a partitioning that partitioning, zipping partition i of every part.
        "spark.sql.unionOutputPartitioning": "false",
        # Delta: small daily tables, so skip the automatic checkpoint/stat work that dominates
        # tiny commits, keep the log deterministic.
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.databricks.delta.optimizeWrite.enabled": "false",
        "spark.sql.parquet.compression.codec": "snappy",
        # Delta rebuilds a table's snapshot with this many tasks; the default (50) dominates the
        # cost of small daily commits on a 2-core machine. Overridable for a cluster.
        "spark.databricks.delta.snapshotPartitions": os.environ.get("ONETRACK_DELTA_SNAPSHOT_PARTITIONS", "2"),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }


def build_spark_session(
    *,
    app_name: str = "onetrack",
    master: str | None = None,
    conf: dict[str, str] | None = None,
    driver_memory: str | None = None,
    shuffle_partitions: int | None = None,
    ui: bool = False,
):
    """Create (or return the running) SparkSession with Delta Lake configured."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    # Python workers (if any) run the same interpreter and packages as the driver.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    remote = os.environ.get("ONETRACK_SPARK_REMOTE")
    settings = base_conf(driver_memory=driver_memory, shuffle_partitions=shuffle_partitions, ui=ui)
    settings.update(parse_conf(os.environ.get("ONETRACK_SPARK_CONF")))
    settings.update(conf or {})

    if remote:
        builder = SparkSession.builder.remote(remote).appName(app_name)
        for key in ("spark.sql.session.timeZone", "spark.sql.shuffle.partitions", "spark.sql.ansi.enabled"):
            builder = builder.config(key, settings[key])
        return builder.getOrCreate()

    jars = cached_jars()
    if not jars and "spark.jars.packages" not in settings:
        raise RuntimeError(
            f"Delta jars not found in {jars_dir()}/jars. Run the set-up (bash .ci/setup.sh) "
            "or `python -m pipelines.jars` once with access to Maven Central."
        )
    if jars and "spark.jars" not in settings:
        settings["spark.jars"] = ",".join(jars)
    builder = SparkSession.builder.appName(app_name).master(
        master or os.environ.get("ONETRACK_SPARK_MASTER", "local[*]")
    )
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("ONETRACK_SPARK_LOG_LEVEL", "WARN"))
    return spark
