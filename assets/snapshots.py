"""Versioned snapshots: a daily "as of D" table kept as one Delta table and its versions.

A snapshot asset (e.g. ``finance/order_attribution``) holds, as of each landing date D, every row
of its scope. Most rows are the same from one day to the next, so instead of a full copy per day
the table holds the current snapshot, and the run for D commits only what changed since the
snapshot it builds on (a Delta ``DELETE`` of the partitions that left the scope, then one
``MERGE`` of the changed rows and the removed keys; deletion vectors, so untouched files are not
rewritten). The snapshot as of D is the
version the MERGE made, read by Delta time travel; ``audit/snapshot_versions`` maps
(table, D) to that version and to the settings it was computed with.

- A run for D builds on the latest mapped date before D computed with the same settings. If the
  table has moved on since that version (a rerun of an earlier day, a backfill out of order), it is
  first restored to it (``RESTORE``: a log-only commit), so the changes always apply to exactly the
  snapshot they were computed from; the commit's ``readVersion`` is checked, and a mismatch (a
  concurrent writer) fails the run before the map is updated.
- A version stays readable while VACUUM keeps its files: the map only offers versions committed
  less than ``vacuum_retain_hours`` (less a day of margin) ago. Older dates are computed from
  silver again (both paths give the same rows: the incremental tests compare them).
- Readers get the rows with ``as_of = D`` added, the columns of the asset's schema.
- A table with ``change_feed`` (Delta's change data feed) tells which keys the day's MERGE
  changed (:meth:`SnapshotTable.changed_keys`), so a snapshot computed from it (the re-exposure
  from the attribution) reads only those; the map records the version the changes applied to,
  the MERGE's version and, in ``inputs``, the versions of the tables a snapshot was computed from.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from assets.storage import (
    BROADCAST_MAX_ROWS,
    ensure_properties,
    read_table,
    replace_partition,
    table_exists,
    table_id,
)
from pipelines.config import OnetrackConfig
from quality.runner import passed_with

VERSIONS_TABLE = ("audit", "snapshot_versions")
VERSIONS_SCHEMA = T.StructType(
    [
        T.StructField("table", T.StringType(), False),
        T.StructField("as_of", T.DateType(), False),
        # the Delta table's id: a table deleted and created again starts a new history, whose
        # version numbers mean something else
        T.StructField("table_id", T.StringType(), False),
        T.StructField("version", T.LongType(), False),
        T.StructField("settings", T.StringType(), True),
        T.StructField("committed_at", T.TimestampType(), False),
        # a version committed as changes: the mapped version it was applied to, and the MERGE's
        # version (null: no MERGE commit), whose change data feed holds the changed rows' keys
        T.StructField("base_version", T.LongType(), True),
        T.StructField("merge_version", T.LongType(), True),
        # what the rows were computed from, e.g. {"finance/order_attribution": 12} (JSON)
        T.StructField("inputs", T.StringType(), True),
    ]
)
# Commits that leave the table's rows as they were (OPTIMIZE rewrites files in a
# ``dataChange = false`` commit; VACUUM logs its start and end; the maintenance sets the VACUUM
# retention as a table property): changes computed from a version can apply after them.
CONTENT_KEEPING = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES"})
# Deletion vectors: a MERGE marks the replaced rows instead of rewriting their files.
TABLE_PROPERTIES = {"delta.enableDeletionVectors": "true"}
# Change data feed (on the tables other snapshots are computed from): the keys a day changed can be
# read back (:meth:`SnapshotTable.changed_keys`), so a snapshot computed from this one needs only
# the changed rows. It makes a MERGE write the changed rows a second time, so it is not on by default.
CHANGE_FEED = {"delta.enableChangeDataFeed": "true"}
# A mapped version is offered while its commit is younger than the VACUUM retention less this.
RETENTION_MARGIN = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Snapshot:
    """What a mapped version is: the table version and the settings it was computed with."""

    as_of: dt.date
    version: int
    settings: dict | None
    base_version: int | None = None
    merge_version: int | None = None
    inputs: dict | None = None


@dataclass(frozen=True)
class SnapshotTable:
    """One versioned snapshot table of the warehouse.

    ``schema`` is the asset's schema as readers see it (with ``as_of``, the stored table has
    every column but ``as_of``); ``key`` its row key, a column or a tuple of columns, compared
    null-safe with ``null_safe_key`` (a null is a key value: the allocation's unattributed
    campaign-day row has no order); ``partition_by`` the stored table's partition column (a date
    the scope is bounded by, so rows leaving the scope are whole files).
    """

    spark: SparkSession
    cfg: OnetrackConfig
    name: tuple[str, str]
    schema: T.StructType
    key: str | tuple[str, ...]
    partition_by: str | None = None
    change_feed: bool = False
    null_safe_key: bool = False
    # the version map as read by this object, until it writes the map again: a step asks it
    # several times (base, reads, changes), and each read is a Delta scan of the map
    _map_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def properties(self) -> dict[str, str]:
        return {**TABLE_PROPERTIES, **(CHANGE_FEED if self.change_feed else {})}

    @property
    def keys(self) -> list[str]:
        """The columns of the row key."""
        return [self.key] if isinstance(self.key, str) else list(self.key)

    @property
    def path(self) -> str:
        return self.cfg.table_path(*self.name)

    @property
    def label(self) -> str:
        return "/".join(self.name)

    # -- the version map ------------------------------------------------------------------------

    def snapshots(self) -> dict[dt.date, Snapshot]:
        """The readable snapshots of this table by date (see the module docstring). Read once per
        object: its own writes refresh it, so an object is for one step, not for a long life."""
        if "snapshots" not in self._map_cache:
            self._map_cache["snapshots"] = self._read_snapshots()
        return dict(self._map_cache["snapshots"])

    def _read_snapshots(self) -> dict[dt.date, Snapshot]:
        versions_path = self.cfg.table_path(*VERSIONS_TABLE)
        if not table_exists(self.spark, versions_path) or not table_exists(self.spark, self.path):
            return {}
        oldest = _now() - dt.timedelta(hours=self.cfg.vacuum_retain_hours) + RETENTION_MARGIN
        versions = read_table(self.spark, versions_path)
        if "table_id" not in versions.columns:
            # a map written before the table id was recorded: its versions cannot be told from
            # those of a table created again, so none is offered (the next write adds the column)
            return {}
        rows = versions.filter(
            (F.col("table") == F.lit(self.label))
            & (F.col("table_id") == F.lit(self._table_id()))
            & (F.col("committed_at") > F.lit(oldest))
        ).collect()
        snapshots = {}
        for row in rows:
            r = row.asDict()  # a map written before the change columns existed has none
            snapshots[r["as_of"]] = Snapshot(
                r["as_of"],
                int(r["version"]),
                json.loads(r["settings"] or "null"),
                r.get("base_version"),
                r.get("merge_version"),
                json.loads(r.get("inputs") or "null"),
            )
        return snapshots

    def dates(self) -> set[dt.date]:
        return set(self.snapshots())

    def base_before(self, day: dt.date, settings: dict) -> dt.date | None:
        """The latest readable snapshot before ``day`` computed with ``settings`` (None: compute
        from scratch), so that a changed window or lookback never mixes with the old one."""
        earlier = [s for d, s in self.snapshots().items() if d < day]
        latest = max(earlier, key=lambda s: s.as_of, default=None)
        return latest.as_of if latest is not None and latest.settings == settings else None

    def changed_keys(self, day: dt.date, since_version: int) -> DataFrame | None:
        """The keys of the rows that differ between the version ``since_version`` and the snapshot
        as of ``day`` (changed, new or removed; a superset is allowed), from the change data feed
        of the MERGE that committed ``day``; None when ``day`` was not committed as changes
        applied to exactly that version (then the caller compares whole snapshots or recomputes).
        The partitions that left the scope (``drop_below``) are not among them."""
        changes = self.changes(day, since_version)
        return None if changes is None else changes.select(*self.keys).distinct()

    def changes(self, day: dt.date, since_version: int) -> DataFrame | None:
        """The rows of :meth:`changed_keys` as the change data feed holds them: for each changed
        key its row before (updated or removed) and after (updated or new), with the stored
        columns and Delta's ``_change_type``, ``_commit_version``, ``_commit_timestamp``; None as
        for :meth:`changed_keys`."""
        if not self.change_feed:
            return None
        found = self.snapshots().get(day)
        if found is None or found.base_version is None or found.base_version != since_version:
            return None
        if found.merge_version is None:  # nothing merged that day
            stored = [f for f in self.schema.fields if f.name != "as_of"]
            feed = [
                T.StructField("_change_type", T.StringType()),
                T.StructField("_commit_version", T.LongType()),
                T.StructField("_commit_timestamp", T.TimestampType()),
            ]
            return self.spark.createDataFrame([], T.StructType(stored + feed))
        return (
            self.spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", found.merge_version)
            .option("endingVersion", found.merge_version)
            .load(self.path)
        )

    def _record(
        self,
        day: dt.date,
        version: int,
        settings: dict | None,
        *,
        base_version: int | None = None,
        merge_version: int | None = None,
        inputs: dict | None = None,
    ) -> None:
        row = (
            self.label,
            day,
            self._table_id(),
            version,
            json.dumps(settings, sort_keys=True),
            _now(),
            base_version,
            merge_version,
            None if inputs is None else json.dumps(inputs, sort_keys=True),
        )
        frame = self.spark.createDataFrame([row], VERSIONS_SCHEMA)
        replace_partition(
            frame,
            self.cfg.table_path(*VERSIONS_TABLE),
            {"table": self.label, "as_of": day},
            ["table"],
            merge_schema=True,  # a map written before the change columns gains them
        )
        self._map_cache.clear()

    # -- reads ----------------------------------------------------------------------------------

    def read(self, day: dt.date) -> DataFrame | None:
        """The snapshot as of ``day`` (None if no readable version is mapped for it)."""
        found = self.snapshots().get(day)
        if found is None:
            return None
        return self._at(found.version, day)

    def _at(self, version: int, day: dt.date) -> DataFrame:
        rows = self.spark.read.format("delta").option("versionAsOf", version).load(self.path)
        return self._as_of(rows, day)

    def _as_of(self, rows: DataFrame, day: dt.date) -> DataFrame:
        return rows.withColumn("as_of", F.lit(day).cast("date")).select(*self.schema.fieldNames())

    def read_many(self, days: Iterable[dt.date]) -> DataFrame:
        """The snapshots of ``days`` that are readable, as one frame told apart by ``as_of`` (a
        filter on one date prunes the others: their ``as_of`` is a literal)."""
        found = self.snapshots()
        frames = [self._at(found[d].version, d) for d in sorted(set(days)) if d in found]
        if not frames:
            return self.spark.createDataFrame([], self.schema)
        out = frames[0]
        for frame in frames[1:]:
            out = out.unionByName(frame)
        return out

    # -- writes ---------------------------------------------------------------------------------

    def _stored(self, df: DataFrame) -> DataFrame:
        return df.select(*[c for c in self.schema.fieldNames() if c != "as_of"])

    def write_full(
        self, df: DataFrame, day: dt.date, settings: dict | None, *, inputs: dict | None = None
    ) -> dict:
        """Replace the table's content with ``df`` (the whole snapshot as of ``day``), as a version
        mapped to ``day`` (also replaces a table of another layout). Returns ``version``."""
        writer = (
            self._stored(df)
            .write.format("delta")
            .mode("overwrite")
            .option("overwriteSchema", "true")
            .option("userMetadata", json.dumps({"as_of": day.isoformat(), "full": True}))
        )
        for name, value in self.properties.items():
            writer = writer.option(name, value)
        if self.partition_by:
            writer = writer.partitionBy(self.partition_by)
        writer.save(self.path)
        self._ensure_properties()  # an older table replaced keeps its properties
        version = self._last_commit()["version"]
        self._record(day, version, settings, inputs=inputs)
        return {"version": version}

    def _ensure_properties(self) -> bool:
        """Set the :attr:`properties` the table lacks (one commit); True if it committed."""
        return ensure_properties(self.spark, self.path, self.properties)

    def write_changes(
        self,
        base: dt.date,
        day: dt.date,
        upserts: DataFrame,
        removed: DataFrame,
        settings: dict | None,
        *,
        drop_below: dt.date | None = None,
        inputs: dict | None = None,
    ) -> dict:
        """Commit the snapshot as of ``day`` as the changes from the one of ``base``: ``upserts``
        (whole rows, at most one per key), ``removed`` (a frame of keys to delete), and, with
        ``drop_below``, the rows whose ``partition_by`` value is below it (left the scope: a
        DELETE of whole partitions first). The MERGE's version is mapped to ``day``, with the
        base's version and ``inputs`` (see :meth:`changed_keys`). Returns ``version``,
        ``rows_written``, ``keys_removed`` and ``written``: the upserts as readers of the snapshot
        as of ``day`` see them (materialized; what :func:`check_frame` validates). (An upsert
        equal to the base's row is rewritten all the same: the caller leaves out what cannot
        have changed.)"""
        from delta.tables import DeltaTable

        base_version = self.snapshots()[base].version
        table = DeltaTable.forPath(self.spark, self.path)
        expected = self._same_content_since(base_version)
        if expected is None:
            table.restoreToVersion(base_version)
            expected = self._last_commit()["version"]
        if drop_below is not None:
            # A partition predicate: whole files are dropped from the log, nothing is scanned
            # (as a clause of the MERGE below it would make it join every row of the table).
            table.delete(F.col(self.partition_by) < F.lit(drop_below))
            expected = self._last_commit()["version"]
        if self._ensure_properties():  # a table written before the change data feed was on
            expected = self._last_commit()["version"]
        columns = [c for c in self.schema.fieldNames() if c != "as_of"]
        # Materialized once: MERGE reads its source twice (to find the files, then to write).
        upserts = upserts.localCheckpoint(eager=True)
        removed = removed.select(*self.keys).localCheckpoint(eager=True)
        source = (
            self._stored(upserts)
            .withColumn("_delete", F.lit(False))
            .unionByName(removed.select(*self.keys, F.lit(True).alias("_delete")), allowMissingColumns=True)
        )
        rows_written, keys_removed = upserts.count(), removed.count()
        if rows_written + keys_removed <= BROADCAST_MAX_ROWS:
            # a day's changes against the whole table: the changes are broadcast to the join
            # that finds the files they touch, the table's rows are not shuffled
            source = F.broadcast(source)
        values = {c: f"s.`{c}`" for c in columns}
        merge = (
            table.alias("t")
            .merge(source.alias("s"), self._match_condition())
            .whenMatchedDelete("s._delete")
            .whenMatchedUpdate(set=values)
            .whenNotMatchedInsert("NOT s._delete", values=values)
        )
        self.spark.conf.set(
            "spark.databricks.delta.commitInfo.userMetadata",
            json.dumps({"as_of": day.isoformat(), "base": base.isoformat()}),
        )
        try:
            merge.execute()
        finally:
            self.spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")
        commit = self._last_commit()
        merge_version = None
        if commit["version"] == expected:  # nothing to merge: Delta made no commit
            version = expected
        elif commit["operation"] != "MERGE" or commit["readVersion"] != expected:
            raise RuntimeError(
                f"{self.label}: the snapshot as of {day} was to be committed on version {expected} "
                f"but version {commit['version']} ({commit['operation']}) read version "
                f"{commit['readVersion']}: another writer changed the table; rerun the day"
            )
        else:
            version = merge_version = commit["version"]
        self._record(
            day, version, settings, base_version=base_version, merge_version=merge_version, inputs=inputs
        )
        return {
            "version": version,
            "rows_written": rows_written,
            "keys_removed": keys_removed,
            "written": self._as_of(upserts, day),
        }

    def _match_condition(self) -> str:
        """The MERGE's key match (``<=>`` with ``null_safe_key``; else ``=``, which lets the
        join use the key as is)."""
        equals = "<=>" if self.null_safe_key else "="
        return " AND ".join(f"t.`{k}` {equals} s.`{k}`" for k in self.keys)

    def _same_content_since(self, version: int) -> int | None:
        """The latest version if every commit after ``version`` left the content as it was
        (compaction: ``dataChange = false``), so the changes can apply on top of it; else None."""
        from delta.tables import DeltaTable

        later = (
            DeltaTable.forPath(self.spark, self.path)
            .history()
            .filter(F.col("version") > F.lit(version))
            .select("version", "operation", "operationParameters")
            .collect()
        )
        if any(r["operation"] not in CONTENT_KEEPING for r in later):
            return None
        return max((r["version"] for r in later), default=version)

    def _table_id(self) -> str:
        return table_id(self.spark, self.path)

    def _last_commit(self):
        from delta.tables import DeltaTable

        return (
            DeltaTable.forPath(self.spark, self.path)
            .history(1)
            .select("version", "readVersion", "operation")
            .first()
        )


def check_frame(
    table: SnapshotTable, day: dt.date, written: dict, suite_names: Iterable[str], validations_root: str
) -> tuple[DataFrame, dict]:
    """What the checks of the snapshot as of ``day`` validate, and what to record with them
    (``record`` of :func:`quality.checks.check_results`).

    ``written``: what the run for ``day`` returned (``base``, and ``written`` when it committed
    changes). A row rule (type, null, set, equation) holds on the snapshot when it holds on the
    base and on the rows written; a key unique in the base and among the written rows stays unique
    (the MERGE updates a matched key in place and inserts an unmatched one once); removing rows
    breaks no rule. So when every suite passed on the base at the version mapped for it now (the
    version recorded with its validation), only the written rows are validated; otherwise (computed
    from scratch; the base never validated, failed, or committed again since) the whole snapshot.
    A check's cost then follows the day's changes, not the size of the scope.
    """
    snapshots = table.snapshots()
    table_id = table._table_id()
    record = {"snapshot_version": snapshots[day].version, "table_id": table_id}
    base = written.get("base")
    found = snapshots.get(base) if base is not None and written.get("written") is not None else None
    if found is not None and passed_with(
        validations_root, suite_names, base.isoformat(), snapshot_version=found.version, table_id=table_id
    ):
        record["validated"] = (
            f"the {written['rows_written']} rows written as of {day.isoformat()} on the snapshot "
            f"as of {base.isoformat()} (version {found.version}, which passed)"
        )
        return written["written"], record
    record["validated"] = f"the whole snapshot as of {day.isoformat()}"
    return table.read(day), record
