"""Materialization metadata that helps the operator: counts, Delta version, a small preview."""

from __future__ import annotations

from dagster import MetadataValue
from pyspark.sql import DataFrame


def preview(df: DataFrame, rows: int = 5) -> MetadataValue:
    """A markdown table of a few rows (a bounded ``limit`` is all that reaches the driver)."""
    sample = df.limit(rows).toPandas()
    for col in sample.columns:
        sample[col] = sample[col].astype(str)
    return MetadataValue.md(sample.to_markdown(index=False) if len(sample) else "_no rows_")


def delta_metadata(path: str, version: int | None, rows: int | None = None) -> dict:
    meta = {"table_path": MetadataValue.path(path)}
    if version is not None:
        meta["delta_version"] = MetadataValue.int(int(version))
    if rows is not None:
        meta["rows"] = MetadataValue.int(int(rows))
    return meta
