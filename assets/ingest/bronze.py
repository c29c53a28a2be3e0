"""Landing files -> bronze rows: every record as landed, with its file and line.

A record becomes one bronze row with ``raw`` (the landed line; null for Parquet), ``fields``
(its values as a string map: the common shape every contract is validated against) and
``parse_error`` (``json:malformed`` or ``file:missing_column:<c>``). A file that cannot be read at
all yields no rows and a ``quarantined`` entry in the files table instead (SPEC §3).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from assets.ingest.contracts import SourceContract
from assets.storage import hadoop_path

BRONZE_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.DateType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("line_number", T.LongType(), False),
        T.StructField("raw", T.StringType(), True),
        T.StructField("fields", T.MapType(T.StringType(), T.StringType(), True), True),
        T.StructField("parse_error", T.StringType(), True),
    ]
)
FILES_SCHEMA = T.StructType(
    [
        T.StructField("dt", T.DateType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("size_bytes", T.LongType(), True),
        T.StructField("status", T.StringType(), False),
        T.StructField("error", T.StringType(), True),
        T.StructField("records", T.LongType(), True),
    ]
)


@dataclass(frozen=True)
class LandingFile:
    path: str  # absolute path or URI, as Spark reads it
    relative: str  # relative to the landing root: <source>/dt=D/<name>
    size: int


def list_landing_files(spark: SparkSession, landing_dir: str, source: str, day: dt.date) -> list[LandingFile]:
    """Files of one landing folder, sorted by name, through Hadoop's FileSystem (local, s3a, hdfs)."""
    fs, path = hadoop_path(spark, f"{landing_dir}/{source}/dt={day.isoformat()}")
    if not fs.exists(path):
        return []
    out = []
    for status in fs.listStatus(path):
        if not status.isFile():
            continue
        name = status.getPath().getName()
        if name.startswith((".", "_")):
            continue
        out.append(
            LandingFile(
                path=status.getPath().toString(),
                relative=f"{source}/dt={day.isoformat()}/{name}",
                size=int(status.getLen()),
            )
        )
    return sorted(out, key=lambda f: f.relative)


def _numbered_lines(spark: SparkSession, file: LandingFile) -> DataFrame:
    """The file's lines with 1-based line numbers in file order (blank lines keep their number)."""
    lines = spark.read.text(file.path).select(
        F.col("value").alias("raw"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_mono"),
    )
    order = Window.orderBy("_block", "_mono")
    return lines.withColumn("line_number", F.row_number().over(order).cast("long")).drop("_block", "_mono")


def _frame(df: DataFrame, day: dt.date, file: LandingFile) -> DataFrame:
    return df.select(
        F.lit(day).cast("date").alias("dt"),
        F.lit(file.relative).alias("source_file"),
        F.col("line_number").cast("long"),
        F.col("raw"),
        F.col("fields"),
        F.col("parse_error"),
    )


def read_jsonl(spark: SparkSession, file: LandingFile, day: dt.date) -> tuple[DataFrame, str | None]:
    lines = _numbered_lines(spark, file).filter(F.trim(F.col("raw")) != "")
    fields = F.from_json(F.col("raw"), T.MapType(T.StringType(), T.StringType()))
    parsed = lines.withColumn("fields", fields).withColumn(
        "parse_error", F.when(F.col("fields").isNull(), F.lit("json:malformed"))
    )
    return _frame(parsed, day, file), None


def read_csv(
    spark: SparkSession, file: LandingFile, day: dt.date, contract: SourceContract
) -> tuple[DataFrame, str | None]:
    lines = _numbered_lines(spark, file)
    header_row = lines.filter(F.col("line_number") == 1).select("raw").first()
    header = next(csv.reader([(header_row.raw if header_row else "").lstrip("\ufeff")]), [])
    header = [h.strip() for h in header]
    missing = [c for c in contract.field_names if c not in header]
    body = lines.filter((F.col("line_number") > 1) & (F.trim(F.col("raw")) != ""))
    # Data lines are numbered from 1 after the header (SPEC: "later line" within the file).
    body = body.withColumn("line_number", F.col("line_number") - 1)
    names = [h if h else f"_col{i}" for i, h in enumerate(header)]
    ddl = ", ".join(f"`{n}` STRING" for n in names) or "`_col0` STRING"
    parsed = body.withColumn("_row", F.from_csv(F.col("raw"), ddl, {"mode": "PERMISSIVE"}))
    pairs = []
    for n in names:
        pairs.extend([F.lit(n), F.col("_row").getField(n)])
    file_error = f"file:missing_column:{missing[0]}" if missing else None
    parsed = parsed.withColumn("fields", F.create_map(*pairs)).withColumn(
        "parse_error", F.lit(file_error).cast("string")
    )
    return _frame(parsed, day, file), file_error


def read_parquet(
    spark: SparkSession, file: LandingFile, day: dt.date, contract: SourceContract
) -> tuple[DataFrame, str | None]:
    df = spark.read.parquet(file.path)
    missing = [c for c in contract.field_names if c not in df.columns]
    # The row's position in its file, from the Parquet reader itself: no global sort, so a file of
    # millions of rows is numbered in parallel.
    numbered = df.withColumn("line_number", (F.col("_metadata.row_index") + 1).cast("long"))
    pairs = []
    for name, dtype in df.dtypes:
        value = F.col(f"`{name}`")
        if dtype.startswith("timestamp"):
            # An instant, written with its offset so it validates like any landed timestamp.
            value = F.date_format(value, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
        pairs.extend([F.lit(name), value.cast("string")])
    file_error = f"file:missing_column:{missing[0]}" if missing else None
    out = (
        numbered.withColumn("fields", F.create_map(*pairs))
        .withColumn("raw", F.lit(None).cast("string"))
        .withColumn("parse_error", F.lit(file_error).cast("string"))
    )
    return _frame(out, day, file), file_error


_PY4J_CALL = re.compile(r"^An error occurred while calling [\w$.]+\.?$")
_ERROR_CLASS = re.compile(r"\[[A-Z][A-Z_]*(\.[A-Z_]+)*\]")
_VOLATILE = re.compile(r"\b(stage|task|TID) [0-9.]+")


def read_error_message(exc: BaseException) -> str:
    """The most telling line of a read error, the same in every process and run.

    py4j wraps Java errors in "An error occurred while calling o44600.parquet." and Spark's job
    failure text names stage and task numbers; both differ from run to run. The message kept is the
    deepest line carrying a Spark error class (``[FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] ...``),
    else the first meaningful line, with stage/task numbers blanked, so a re-run or a backfill
    writes the same ``bronze/landing_files`` row.
    """
    lines = [line.strip().lstrip(":").strip() for line in str(exc).strip().splitlines()]
    lines = [line.removeprefix("Caused by:").strip() for line in lines if line and not _PY4J_CALL.match(line)]
    lines = [line for line in lines if line and not line.startswith("at ")]
    if not lines:
        return type(exc).__name__
    classified = [line for line in lines if _ERROR_CLASS.search(line)]
    chosen = classified[-1] if classified else lines[0]
    return _VOLATILE.sub(lambda m: f"{m.group(1)} N", chosen)[:300]


def read_landing_partition(
    spark: SparkSession,
    landing_dir: str,
    contract: SourceContract,
    day: dt.date,
) -> tuple[DataFrame, list[dict]]:
    """All records of one source's landing folder, and one entry per file (SPEC §3).

    Each file is read and counted on its own so that one unreadable file is quarantined whole
    without affecting the others.
    """
    frames: list[DataFrame] = []
    files: list[dict] = []
    for file in list_landing_files(spark, landing_dir, contract.name, day):
        entry = {
            "dt": day,
            "source": contract.name,
            "source_file": file.relative,
            "size_bytes": file.size,
            "status": "accepted",
            "error": None,
            "records": None,
        }
        if not file.relative.endswith(contract.suffixes):
            entry.update(status="quarantined", error=f"file:unreadable: not a {contract.fmt} file name")
            files.append(entry)
            continue
        try:
            if contract.fmt == "jsonl":
                frame, file_error = read_jsonl(spark, file, day)
            elif contract.fmt == "csv":
                frame, file_error = read_csv(spark, file, day, contract)
            else:
                frame, file_error = read_parquet(spark, file, day, contract)
            # Reading every record once here surfaces a corrupt file (truncated gzip or Parquet)
            # before it can fail the whole partition.
            entry["records"] = frame.count()
        except Exception as exc:  # noqa: BLE001 - any read failure quarantines the file whole
            entry.update(status="quarantined", error=f"file:unreadable: {read_error_message(exc)}")
            files.append(entry)
            continue
        if file_error:
            entry.update(status="quarantined", error=file_error)
        files.append(entry)
        frames.append(frame)
    if frames:
        records = frames[0]
        for frame in frames[1:]:
            records = records.unionByName(frame)
    else:
        records = spark.createDataFrame([], BRONZE_SCHEMA)
    return records, files
