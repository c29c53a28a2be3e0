"""Bronze -> typed records with their SPEC §2 rule violations, then the three-way split of §3.

Every function here takes and returns DataFrames; nothing reads or writes tables.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from assets.ingest.contracts import Field, SourceContract
from assets.storage import materialize_small, split_by_value

SPARK_TYPES = {
    "string": "string",
    "int": "int",
    "long": "bigint",
    "decimal": "decimal(18,2)",
    "timestamp": "timestamp",
    "date": "date",
}
# Textual forms accepted before a cast is attempted. Decimals: at most 2 places (SPEC §1).
FORMATS = {
    "int": r"^-?[0-9]+$",
    "long": r"^-?[0-9]+$",
    "decimal": r"^-?[0-9]+(\.[0-9]{1,2})?$",
    # ISO-8601 with an explicit offset: a timestamp without one is ambiguous, so it is rejected.
    "timestamp": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$",
    "date": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
}

BRONZE_COLUMNS = ("dt", "source_file", "line_number", "raw", "fields", "parse_error")


def _raw(name: str) -> Column:
    return F.col(f"_raw_{name}")


def _typed(f: Field) -> Column:
    raw = F.trim(_raw(f.name))
    if f.kind == "string":
        return F.when(raw != "", _raw(f.name))
    return F.when(raw.rlike(FORMATS[f.kind]), F.expr(f"try_cast(trim(`_raw_{f.name}`) AS {SPARK_TYPES[f.kind]})"))


def _field_violations(f: Field) -> list[Column]:
    raw = _raw(f.name)
    present = raw.isNotNull() & (F.trim(raw) != "")
    typed = F.col(f.name)
    out: list[Column] = []
    if f.required:
        out.append(F.when(~present, F.lit(f"{f.name}:required")))
    if f.kind != "string":
        out.append(F.when(present & typed.isNull(), F.lit(f"{f.name}:type")))
    if f.enum:
        out.append(F.when(present & ~raw.isin(*f.enum), F.lit(f"{f.name}:enum")))
    if f.check is not None:
        out.append(F.when(typed.isNotNull() & ~F.coalesce(f.check(typed), F.lit(True)), F.lit(f"{f.name}:range")))
    return out


def validate_records(bronze: DataFrame, contract: SourceContract) -> DataFrame:
    """Type every field and list the rules each record breaks (in SPEC order).

    Returns the bronze columns except ``fields``, plus the typed fields, ``violations`` (array),
    ``rule`` (the first), ``extra_fields`` (unknown keys, reported not fatal) and ``record_hash``
    (null for a source with a ``duplicate_key`` of its own);
    ``raw`` is the landed text of a record that breaks a rule (its fields as JSON for Parquet) and
    null for a valid one.
    """
    df = bronze
    for f in contract.fields:
        df = df.withColumn(f"_raw_{f.name}", F.try_element_at(F.col("fields"), F.lit(f.name)))
    for f in contract.fields:
        df = df.withColumn(f.name, _typed(f))

    checks: list[Column] = [F.when(F.col("parse_error").isNotNull(), F.col("parse_error"))]
    for f in contract.fields:
        checks.extend(_field_violations(f))
    for rule in contract.consistency:
        checks.append(F.when(~F.coalesce(rule.holds(), F.lit(True)), F.lit(rule.rule)))
    known = F.array(*[F.lit(n) for n in contract.field_names])
    # A map's keys are distinct, so a record has an unknown key exactly when its map holds more
    # keys than the known fields found in it: the set difference is computed only for those few
    # records (it built a hash set per record: ~3 s a day of traffic at M).
    known_found = sum(F.when(_raw(n).isNotNull(), 1).otherwise(0) for n in contract.field_names)
    extra = F.when(F.size(F.col("fields")) > known_found, F.array_except(F.map_keys(F.col("fields")), known))
    df = (
        df.withColumn("violations", F.array_compact(F.array(*checks)))
        .withColumn("rule", F.try_element_at(F.col("violations"), F.lit(1)))
        .withColumn(
            "extra_fields",
            F.when(F.col("fields").isNotNull(), F.coalesce(extra, F.array().cast("array<string>"))),
        )
    )
    for name, expr in contract.derived.items():
        df = df.withColumn(name, F.when(F.col("rule").isNull(), expr()))
    # The hash is the duplicate key of the sources without one of their own; a source keyed by
    # its own id (traffic: event_id) stores null instead: at 2M events a day the 64-character
    # hash cost a sha2 per event and made silver/traffic 3.6 times its size on disk.
    if contract.duplicate_key is None:
        typed = [F.col(n) for n in contract.field_names]
        df = df.withColumn("record_hash", F.sha2(F.to_json(F.struct(*typed)), 256))
    else:
        df = df.withColumn("record_hash", F.lit(None).cast("string"))
    # The landed text is kept only where it is needed, for the quarantine (for Parquet, which has
    # no line, its fields as JSON); the field map is dropped: a valid record lives on typed, and
    # the frame the ingestion materializes is a fraction of the width.
    quarantine_raw = F.when(F.col("rule").isNotNull(), F.coalesce(F.col("raw"), F.to_json(F.col("fields"))))
    return df.withColumn("raw", quarantine_raw).drop("fields", *[f"_raw_{n}" for n in contract.field_names])


def classify(validated: DataFrame, earlier_keys: DataFrame, contract: SourceContract) -> DataFrame:
    """SPEC §3: label every record ``quarantined``, ``duplicate`` or ``accepted`` (``disposition``).

    Rules are checked first. ``earlier_keys``: the duplicate keys (``record_hash``, or
    ``event_id`` for traffic) already accepted in earlier landing partitions. Within the
    partition, the first occurrence by (source_file, line_number) is kept.

    Only the keys are shuffled, once: the valid records' keys and the earlier ones are grouped
    together, counting the batch's copies and flagging the keys seen before; the few repeated or
    seen ones (materialized, broadcast when small) are joined back to the records, so the wide
    records (2M a day for traffic) never move.
    """
    dup_cols = list(contract.duplicate_columns)
    valid = validated.filter(F.col("rule").isNull())
    batch_keys = valid.select(*dup_cols, F.lit(1).alias("_copies"), F.lit(False).alias("_seen_before"))
    seen_keys = earlier_keys.select(*dup_cols, F.lit(0).alias("_copies"), F.lit(True).alias("_seen_before"))
    flagged = materialize_small(
        batch_keys.unionByName(seen_keys)
        .groupBy(*dup_cols)
        .agg(F.sum("_copies").alias("_copies"), F.max("_seen_before").alias("_seen_before"))
        .filter((F.col("_copies") > 0) & ((F.col("_copies") > 1) | F.col("_seen_before")))
    )
    seen_before = flagged.filter(F.col("_seen_before")).select(*dup_cols, "_seen_before")
    repeated = flagged.filter(F.col("_copies") > 1).select(*dup_cols)
    first = Window.partitionBy(*dup_cols).orderBy("source_file", "line_number")
    later_copies = materialize_small(
        valid.join(repeated, on=dup_cols, how="left_semi")
        .withColumn("_occurrence", F.row_number().over(first))
        .filter(F.col("_occurrence") > 1)
        .select("source_file", "line_number", F.lit(True).alias("_later_copy"))
    )
    labeled = validated.join(seen_before, on=dup_cols, how="left").join(
        later_copies, on=["source_file", "line_number"], how="left"
    )
    disposition = (
        F.when(F.col("rule").isNotNull(), F.lit("quarantined"))
        .when(F.col("_later_copy").isNotNull() | F.col("_seen_before").isNotNull(), F.lit("duplicate"))
        .otherwise(F.lit("accepted"))
    )
    return labeled.withColumn("disposition", disposition).drop("_later_copy", "_seen_before")


def split_records(
    validated: DataFrame,
    earlier_keys: DataFrame,
    contract: SourceContract,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """``classify`` as three frames: accepted, quarantined, duplicates."""
    labeled = classify(validated, earlier_keys, contract)
    return tuple(labeled.filter(F.col("disposition") == d) for d in ("accepted", "quarantined", "duplicate"))


def silver_columns(contract: SourceContract) -> list[str]:
    return [*contract.field_names, *contract.derived, "dt", "source_file", "line_number", "record_hash"]


def to_silver(accepted: DataFrame, contract: SourceContract) -> DataFrame:
    """The silver columns; with ``contract.split_by``, each partition split by that field's value
    (:func:`assets.storage.split_by_value`, no shuffle), so a read of one value (traffic: the
    clicks) opens only its files."""
    silver = accepted.select(*silver_columns(contract))
    if contract.split_by is None:
        return silver
    return split_by_value(silver, contract.split_by, contract.enum_values(contract.split_by))


QUARANTINE_COLUMNS = ("dt", "source_file", "line_number", "rule", "violations", "raw")


def to_quarantine(quarantined: DataFrame) -> DataFrame:
    """The raw record (the landed line; for Parquet its fields as JSON), its file and the rule."""
    return quarantined.select("dt", "source_file", "line_number", "rule", "violations", "raw")
