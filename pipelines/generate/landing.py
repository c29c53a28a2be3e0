"""``generate_landing``: writes a deterministic landing zone (SPEC section 2) for a range of days.

Loop: for every landing day ``D`` (oldest first), first simulate the order cohorts up to
``D + LOOKAHEAD`` (their buyers clicked up to 10 days before paying, so those clicks land in earlier
folders), then write the day's files of every source from the records buffered for ``D``. Records
landing after ``end`` are not written; records before ``start`` (clicks before the first cohort)
land in ``dt=start``. Memory is bounded by the lookahead window plus one day of output.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import render as R
from .faults import AD_SPEND_COLUMNS, KINDS, FaultKind, kind_counts
from .simulate import (
    EVENT_TYPES,
    FT_RESTATED,
    MAX_CLICK_LEAD_DAYS,
    NOISE_PER_ORDER,
    ORDER_SEQ,
    ORDER_STATUS,
    PLACEMENTS,
    POOLS,
    RANK_BITS,
    REASONS,
    RETURN_STATUS,
    RETURN_TYPES,
    TAG_FAULTS,
    Table,
    ad_counts,
    cohort_faults,
    compact,
    concat,
    noise_events,
    nrows,
    simulate_cohort,
    split_by_land,
    take,
)
from .world import HOUR_WEIGHTS, ID_PREFIX, ID_WIDTH, World, build_world

SOURCES = ("orders", "returns", "ad_spend", "traffic")
LOOKAHEAD = MAX_CLICK_LEAD_DAYS + 1
MAX_TEXT_ROWS = 1_000_000  # per JSONL/CSV file
MAX_PARQUET_ROWS = 2_500_000  # per Parquet file
# random streams: every draw comes from default_rng([seed, stream, ...]) (world: stream 1)
STREAM_COHORT = 2
STREAM_COHORT_FAULTS = 3
STREAM_NOISE = 4
STREAM_SPEND = 5
STREAM_FILES = 6
STREAM_FAULTS = 7
SOURCE_NO = {s: i for i, s in enumerate(SOURCES)}
GENERATOR_DIR = "_generator"
EXT = {"orders": ".jsonl", "returns": ".jsonl", "ad_spend": ".csv", "traffic": ".parquet"}

TRAFFIC_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("user_id", pa.string()),
        ("product_id", pa.string()),
        ("spu_id", pa.string()),
        ("merchant_id", pa.string()),
        ("pool", pa.string()),
        ("event_type", pa.string()),
        ("campaign_id", pa.string()),
        ("placement", pa.string()),
        ("shown_price", pa.decimal128(18, 2)),
    ]
)
PARQUET_OPTIONS = dict(
    compression="zstd",
    compression_level=3,
    row_group_size=1_000_000,
    use_dictionary=[
        "user_id",
        "product_id",
        "spu_id",
        "merchant_id",
        "pool",
        "event_type",
        "campaign_id",
        "placement",
    ],
    write_statistics=["event_time"],  # string statistics cost more than the rest of the write
    version="2.6",
    data_page_version="1.0",
)
CSV_HEADER = ",".join(AD_SPEND_COLUMNS)


@dataclass
class GenerationSummary:
    """What one ``generate_landing`` call wrote.

    ``records[source][dt]``: lines (JSONL), data rows (CSV, header excluded) or rows (Parquet) written
    to the dt folder, corrupted/duplicate ones included, rows of unreadable files excluded.
    ``files[source][dt]``: file paths relative to the landing root. ``cohorts[dt]``: what the
    generator intended for the orders created that day (not a SPEC computation).
    ``injected_faults``: the entries of ``_generator/faults.json``.
    """

    landing_dir: str
    start: str
    end: str
    orders_per_day: int
    seed: int
    faults: bool
    warmup_days: int = 0
    records: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, dict[str, list[str]]] = field(default_factory=dict, repr=False)
    cohorts: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    world: dict[str, int] = field(default_factory=dict)
    injected_faults: list[dict] = field(default_factory=list, repr=False)

    def total(self, source: str) -> int:
        return sum(self.records.get(source, {}).values())

    def describe(self) -> str:
        """A few lines for humans (the CLI prints this)."""
        out = [
            f"{self.start}..{self.end}, {self.orders_per_day} orders/day, seed {self.seed}, "
            f"faults {'on' if self.faults else 'off'}"
        ]
        for source in SOURCES:
            n_files = sum(len(v) for v in self.files.get(source, {}).values())
            out.append(f"  {source:9s} {self.total(source):>12,d} records in {n_files} files")
        if self.faults:
            out.append(f"  {len(self.injected_faults):,d} faults listed in {GENERATOR_DIR}/faults.json")
        return "\n".join(out)

    def fault_counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for f in self.injected_faults:
            out[f"{f['source']}:{f['fault']}"] += 1
        return dict(sorted(out.items()))

    def to_json_dict(self) -> dict:
        # no landing_dir: the same arguments give the same bytes wherever the landing zone is
        d = {
            k: getattr(self, k)
            for k in (
                "start",
                "end",
                "orders_per_day",
                "seed",
                "faults",
                "warmup_days",
                "records",
                "files",
                "cohorts",
                "world",
            )
        }
        d["fault_counts"] = self.fault_counts()
        d["faults_total"] = len(self.injected_faults)
        return d


@dataclass
class _Edit:
    anchor: int
    op: str  # after | replace
    payload: object
    fault: str
    rule: str | None


@dataclass
class _File:
    """One file being written: base rows (sorted), their internal columns and tags, and edits."""

    name: str  # relative to the landing root
    base: object  # pa.Array of lines with "\n" (text) or pa.Table (parquet)
    cols: Table
    tags: np.ndarray
    edits: list[_Edit] = field(default_factory=list)
    used: np.ndarray | None = None
    gz: bool = False
    extra_column: bool = False

    @property
    def n(self) -> int:
        return len(self.base) if not isinstance(self.base, pa.Table) else self.base.num_rows


def _ids(kind: str, numbers: np.ndarray) -> pa.Array:
    return R.id_strings(ID_PREFIX[kind], numbers, ID_WIDTH[kind])


def _order_ids(okey: np.ndarray) -> pa.Array:
    return R.join("o", R.date_strings(okey // ORDER_SEQ, compact=True), R.id_strings("", okey % ORDER_SEQ, 7))


class _Run:
    def __init__(
        self, landing: Path, d_start: int, d_end: int, opd: int, seed: int, faults: bool, warmup_days: int = 0
    ):
        self.landing = landing
        self.d_start, self.d_end = d_start, d_end
        self.opd, self.seed, self.faults = opd, seed, faults
        self.world: World = build_world(opd, seed)
        self.pending: dict[str, dict[int, list[Table]]] = {s: defaultdict(list) for s in SOURCES}
        self.acc: dict[int, np.ndarray] = {}
        self.spend_history: dict[int, Table] = {}
        self.stash: dict[str, dict[int, list]] = {s: {} for s in SOURCES}  # rows for cross-day duplicates
        self.entries: list[dict] = []
        self.records: dict[str, dict[str, int]] = {s: {} for s in SOURCES}
        self.files: dict[str, dict[str, list[str]]] = {s: {} for s in SOURCES}
        self.cohorts: dict[str, dict[str, int]] = {}
        self.kind_total: dict[tuple[str, str], int] = defaultdict(int)
        self.next_cohort = d_start - warmup_days
        self.current = d_start

    # ---- helpers -------------------------------------------------------------------------------
    def rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *stream])

    def day_index(self, day: int) -> int:
        return day - self.d_start

    def n_days(self) -> int:
        return self.d_end - self.d_start + 1

    def special_day(self, day: int, k: int) -> bool:
        """Whole-file faults happen on fixed days of each week of the range (index k mod 7)."""
        return self.day_index(day) % 7 == min(k, self.n_days() - 1)

    def n_files(self, source: str, day: int, n: int, max_rows: int) -> int:
        k = int(self.rng(STREAM_FILES, SOURCE_NO[source], day).integers(2, 4))
        return max(1, min(max(k, math.ceil(n / max_rows)), max(n, 1)))

    def dt_str(self, day: int) -> str:
        return R.day_date(day).isoformat()

    def folder(self, source: str, day: int) -> str:
        return f"{source}/dt={self.dt_str(day)}"

    # ---- simulation ------------------------------------------------------------------------------
    def add_cohort(self, day: int) -> None:
        c = simulate_cohort(self.world, day, self.opd, self.rng(STREAM_COHORT, day))
        warm = day < self.d_start  # a cohort of the warm-up: only its records landed from d_start on
        if self.faults and not warm:
            cohort_faults(self.rng(STREAM_COHORT_FAULTS, day), c, day, self.d_start, self.d_end)
        tr = c["traffic"]
        if not warm:
            tr["land"] = np.maximum(tr["land"], self.d_start)
        self.add_ad_counts(tr)
        for source in ("orders", "returns", "traffic"):
            for land, tab in split_by_land(compact(c[source])).items():
                if land > self.d_end or (warm and land < self.d_start):
                    continue
                assert land >= self.current, (source, land, self.current)
                self.pending[source][land].append(tab)
        if not warm:
            self.cohorts[self.dt_str(day)] = c["stats"]

    def add_ad_counts(self, tab: Table) -> None:
        for d, arr in ad_counts(tab, self.world.n_campaigns).items():
            if self.d_start <= d <= self.d_end:
                if d in self.acc:
                    self.acc[d] += arr
                else:
                    self.acc[d] = arr

    def run(self) -> None:
        for day in range(self.d_start, self.d_end + 1):
            self.current = day
            for source in SOURCES:
                self.clear_folder(source, day)
            while self.next_cohort <= min(self.d_end, day + LOOKAHEAD):
                self.add_cohort(self.next_cohort)
                self.next_cohort += 1
            self.write_orders(day)
            self.write_returns(day)
            self.write_traffic(day)
            self.write_ad_spend(day)
            for source in SOURCES:
                self.pending[source].pop(day, None)
                for old in [d for d in self.stash[source] if d < day - 1]:
                    del self.stash[source][old]
            self.acc.pop(day, None)
            for old in [d for d in self.spend_history if d < day - 2]:
                del self.spend_history[old]

    def clear_folder(self, source: str, day: int) -> None:
        folder = self.landing / self.folder(source, day)
        if folder.is_dir():
            for p in folder.glob("part-*"):
                p.unlink()

    def fresh_event_id(self, day: int) -> str:
        self._fresh += 1
        return f"e{R.day_date(day):%Y%m%d}{self._fresh:09d}"

    # ---- writing one source-day, file by file ----------------------------------------------------
    def write_day(
        self, source: str, day: int, sizes: list[int], build, header: str | None = None, after_file=None
    ) -> None:
        """Build (``build(j) -> _File``), corrupt (faults) and write the day's files one at a time,
        so that at most one file's rows are in memory."""
        planner = _FaultPlanner(self, source, day, sizes) if self.faults else None
        for j in range(len(sizes)):
            f = build(j)
            if planner is not None:
                planner.plan_file(j, f)
            self.write_file(source, day, f, header)
            if planner is not None:
                planner.after_file(f)
            if after_file is not None:
                after_file(j, f)
            del f

    def write_file(self, source: str, day: int, f: _File, header: str | None) -> None:
        path = self.landing / f.name
        path.parent.mkdir(parents=True, exist_ok=True)
        segs, edit_line, ins_pos = _segments(f.n, f.edits)
        if source == "traffic":
            n_written = _write_parquet(path, f, segs)
        else:
            n_written = _write_text(path, f, segs, header)
        for k, e in enumerate(f.edits):
            self.entry(source, day, f.name, edit_line[k], e.fault, e.rule)
        tagged = np.nonzero(f.tags)[0]
        for i, line in zip(tagged, _base_lines(tagged, ins_pos), strict=True):
            self.entry(source, day, f.name, int(line), TAG_FAULTS[int(f.tags[i])], None)
        if f.gz:
            self.entry(source, day, f.name, None, "gzip_file", None)
        if f.extra_column:
            self.entry(source, day, f.name, None, "extra_column", None)
        self.count(source, day, f.name, n_written)

    def count(self, source: str, day: int, name: str, n: int) -> None:
        d = self.dt_str(day)
        self.records[source][d] = self.records[source].get(d, 0) + n
        self.files[source].setdefault(d, []).append(name)

    def entry(self, source, day, file, line, fault, rule) -> None:
        self.entries.append(
            {
                "source": source,
                "dt": self.dt_str(day),
                "file": file,
                "line": line,
                "fault": fault,
                "rule": rule,
            }
        )

    def split(self, source: str, day: int, tab: Table, keys: list[str], max_rows: int) -> list[Table]:
        n = nrows(tab)
        order = np.lexsort([tab[k] for k in reversed(keys)])
        tab = take(tab, order)
        k = self.n_files(source, day, n, max_rows)
        return [take(tab, idx) for idx in np.array_split(np.arange(n), k)]

    def file_name(self, source: str, day: int, j: int, gz: bool = False) -> str:
        return f"{self.folder(source, day)}/part-{j + 1:04d}{EXT[source]}{'.gz' if gz else ''}"

    # ---- orders ---------------------------------------------------------------------------------
    def write_orders(self, day: int) -> None:
        tab = concat(self.pending["orders"].get(day, []))
        if not tab or nrows(tab) == 0:
            return
        w = self.world
        chunks = self.split("orders", day, tab, ["upd", "ms", "okey", "ver"], MAX_TEXT_ROWS)
        del tab
        gz_file = -1
        if self.faults and (self.day_index(day) % 2 == 1 or self.n_days() == 1):
            gz_file = int(self.rng(STREAM_FILES, 10, day).integers(0, len(chunks)))

        def build(j: int) -> _File:
            c = chunks[j]
            chunks[j] = None
            sku = c["sku"]
            paid_ok = c["paid"] >= 0
            line = R.join(
                '{"order_id":"',
                _order_ids(c["okey"]),
                '","user_id":"',
                _ids("user", c["user"]),
                '","merchant_id":"',
                _ids("merchant", w.sku_merchant[sku]),
                '","product_id":"',
                _ids("product", sku),
                '","spu_id":"',
                _ids("spu", w.sku_spu[sku]),
                '","quantity":',
                R.int_strings(c["qty"]),
                ',"unit_price":"',
                R.money_strings(c["price"]),
                '","platform_subsidy":"',
                R.money_strings(c["subsidy"]),
                '","voucher_pool":',
                R.json_nullable(c["vpool"] >= 0, R.quoted(R.pick(POOLS, np.maximum(c["vpool"], 0)))),
                ',"status":"',
                R.pick(ORDER_STATUS, c["status"]),
                '","paid_at":',
                R.json_nullable(
                    paid_ok, R.quoted(R.ts_strings(np.where(paid_ok, c["paid"], c["upd"]), c["style"]))
                ),
                ',"updated_at":"',
                R.ts_strings(c["upd"], c["style"], c["ms"]),
                '"}\n',
            )
            cols = {"paid": c["paid"], "subsidy": c["subsidy"]}
            return _File(
                self.file_name("orders", day, j, j == gz_file), line, cols, c["ftag"], gz=j == gz_file
            )

        self.write_day("orders", day, [nrows(c) for c in chunks], build)

    # ---- returns --------------------------------------------------------------------------------
    def write_returns(self, day: int) -> None:
        tab = concat(self.pending["returns"].get(day, []))
        if not tab or nrows(tab) == 0:
            return
        chunks = self.split("returns", day, tab, ["upd", "rkey", "ver"], MAX_TEXT_ROWS)
        gz_file = -1
        if self.faults and self.special_day(day, 3):
            gz_file = int(self.rng(STREAM_FILES, 11, day).integers(0, len(chunks)))

        def build(j: int) -> _File:
            c = chunks[j]
            refunded_ok = c["refunded"] >= 0
            okey = c["okey"]
            line = R.join(
                '{"return_id":"r',
                R.date_strings(okey // ORDER_SEQ, compact=True),
                R.id_strings("", okey % ORDER_SEQ, 7),
                "-",
                R.int_strings(c["rkey"] % 10),
                '","order_id":"',
                _order_ids(okey),
                '","return_type":"',
                R.pick(RETURN_TYPES, c["rtype"]),
                '","reason_code":"',
                R.pick(REASONS, c["reason"]),
                '","status":"',
                R.pick(RETURN_STATUS, c["status"]),
                '","requested_at":"',
                R.ts_strings(c["requested"], c["style"]),
                '","refunded_at":',
                R.json_nullable(
                    refunded_ok,
                    R.quoted(R.ts_strings(np.where(refunded_ok, c["refunded"], c["upd"]), c["style"])),
                ),
                ',"refund_amount":"',
                R.money_strings(c["amount"]),
                '","updated_at":"',
                R.ts_strings(c["upd"], c["style"]),
                '"}\n',
            )
            cols = {"refunded": c["refunded"], "status": c["status"]}
            return _File(
                self.file_name("returns", day, j, j == gz_file), line, cols, c["ftag"], gz=j == gz_file
            )

        self.write_day("returns", day, [nrows(c) for c in chunks], build)

    # ---- traffic --------------------------------------------------------------------------------
    def write_traffic(self, day: int) -> None:
        """Files by hour range of the day: background noise generated per file, plus the buffered
        cohort events (events of earlier days landing late go to the first file)."""
        w = self.world
        cohort = concat(self.pending["traffic"].get(day, []))
        n_noise = int(round(NOISE_PER_ORDER * self.opd))
        n_cohort = nrows(cohort)
        k = min(24, self.n_files("traffic", day, n_noise + n_cohort, MAX_PARQUET_ROWS))
        bounds = np.round(np.linspace(0, 24, k + 1)).astype(np.int64)
        share = np.array([HOUR_WEIGHTS[bounds[i] : bounds[i + 1]].sum() for i in range(k)])
        n_per = np.floor(n_noise * share / share.sum()).astype(np.int64)
        n_per[-1] += n_noise - n_per.sum()
        file_of = np.zeros(n_cohort, dtype=np.int64)
        if n_cohort:
            on_day = R.business_day(cohort["time"]) == day
            hour = np.where(on_day, R.business_hour(cohort["time"]), 0)
            file_of = np.searchsorted(bounds[1:-1], hour, side="right")
        sizes = [int(n_per[j] + (file_of == j).sum()) for j in range(k)]
        base_t = R.day_start_utc(self.d_start) - 30 * R.DAY
        self._fresh = 10**9 - 10**6  # ids of corrupted copies: a range no regular event reaches
        extra_col = -1
        if self.faults and self.special_day(day, 4):
            extra_col = int(self.rng(STREAM_FILES, 12, day).integers(0, k))
        seq = [0]

        def build(j: int) -> _File:
            noise = noise_events(
                w, self.rng(STREAM_NOISE, day, j), day, (int(bounds[j]), int(bounds[j + 1])), int(n_per[j])
            )
            self.add_ad_counts(noise)
            tab = concat([take(cohort, np.nonzero(file_of == j)[0]), noise] if n_cohort else [noise])
            del noise
            key = ((tab["time"] - base_t) << RANK_BITS) | tab["rank"]
            tab = take(tab, np.argsort(key, kind="stable"))
            n = nrows(tab)
            sku, camp = tab["sku"], tab["camp"]
            table = pa.Table.from_arrays(
                [
                    R.id_strings(f"e{R.day_date(day):%Y%m%d}", seq[0] + np.arange(n), 9),
                    R.timestamp_utc(tab["time"]),
                    _ids("user", tab["user"]),
                    _ids("product", sku),
                    _ids("spu", w.sku_spu[sku]),
                    _ids("merchant", w.sku_merchant[sku]),
                    R.pick(POOLS, tab["pool"]),
                    R.pick(EVENT_TYPES, tab["etype"]),
                    R.with_nulls(_ids("campaign", np.maximum(camp, 0)), camp >= 0),
                    R.pick(PLACEMENTS, tab["placement"]),
                    R.decimal_from_cents(tab["price"]),
                ],
                schema=TRAFFIC_SCHEMA,
            )
            seq[0] += n
            return _File(
                self.file_name("traffic", day, j),
                table,
                {"pool": tab["pool"]},
                tab["ftag"],
                extra_column=j == extra_col,
            )

        def after_file(j: int, f: _File) -> None:
            if j == 0 and self.faults and self.special_day(day, 2):
                self.write_truncated_parquet(day, f, k)

        self.write_day("traffic", day, sizes, build, after_file=after_file)

    def write_truncated_parquet(self, day: int, src: _File, k: int) -> None:
        """A Parquet file cut short (no footer): unreadable. It holds copies of real events."""
        name = self.file_name("traffic", day, k)
        sink = io.BytesIO()
        pq.write_table(src.base.slice(0, min(500, src.n)), sink, **PARQUET_OPTIONS)
        data = sink.getvalue()
        path = self.landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[: int(len(data) * 0.6)])
        self.entry("traffic", day, name, None, "truncated_parquet", "file:unreadable")
        self.files["traffic"].setdefault(self.dt_str(day), []).append(name)

    # ---- ad spend -------------------------------------------------------------------------------
    def write_ad_spend(self, day: int) -> None:
        """The ad platform's hourly report: impressions and clicks of the day's ad events per campaign
        and hour, spend = clicks x the hour's CPC. Files by hour range; restatements in the last."""
        w = self.world
        acc = self.acc.get(day)
        rng = self.rng(STREAM_SPEND, day)
        if acc is None:
            acc = np.zeros((2, w.n_campaigns * 24), dtype=np.int64)
        idx = np.nonzero(acc[0] + acc[1] > 0)[0]
        camp, hour = idx // 24, idx % 24
        clicks = acc[1][idx]
        impressions = np.maximum(acc[0][idx], clicks)
        cpc = np.maximum(1, np.round(w.camp_cpc[camp] * rng.uniform(0.85, 1.15, len(idx)))).astype(np.int64)
        tab = {
            "sday": np.full(len(idx), day, dtype=np.int64),
            "hour": hour,
            "camp": camp,
            "impressions": impressions,
            "clicks": clicks,
            "spend": clicks * cpc,
            "ftag": np.zeros(len(idx), dtype=np.int8),
        }
        self.spend_history[day] = dict(tab, restated=np.zeros(len(idx), dtype=bool))
        if self.faults:
            tab = concat([tab, self.restatements(day)])
        n = nrows(tab)
        if n == 0:
            return
        k = self.n_files("ad_spend", day, n, MAX_TEXT_ROWS)
        bounds = np.round(np.linspace(0, 24, k + 1)).astype(np.int64)
        file_of = np.where(
            tab["sday"] == day, np.searchsorted(bounds[1:-1], tab["hour"], side="right"), k - 1
        )
        order = np.lexsort((tab["camp"], tab["hour"], tab["sday"], file_of))
        tab, file_of = take(tab, order), file_of[order]
        chunks = [take(tab, np.nonzero(file_of == j)[0]) for j in range(k)]
        chunks = [c for c in chunks if nrows(c)]
        extra_col = -1
        if self.faults and self.special_day(day, 5):
            extra_col = int(self.rng(STREAM_FILES, 13, day).integers(0, len(chunks)))
        firsts: list[str] = []

        def build(j: int) -> _File:
            c = chunks[j]
            cc = c["camp"]
            line = R.join(
                R.date_strings(c["sday"]),
                ",",
                R.int_strings(c["hour"]),
                ",",
                _ids("merchant", w.camp_advertiser[cc]),
                ",",
                _ids("campaign", cc),
                ",",
                _ids("product", w.camp_product[cc]),
                ",",
                R.int_strings(c["impressions"]),
                ",",
                R.int_strings(c["clicks"]),
                ",",
                R.money_strings(c["spend"]),
                "\n",
            )
            return _File(self.file_name("ad_spend", day, j), line, {}, c["ftag"], extra_column=j == extra_col)

        def after_file(j: int, f: _File) -> None:
            firsts.extend(s[:-1] for s in f.base.slice(0, min(10, f.n)).to_pylist())

        self.write_day(
            "ad_spend", day, [nrows(c) for c in chunks], build, header=CSV_HEADER, after_file=after_file
        )
        if self.faults and self.special_day(day, 1):
            self.write_missing_column_csv(day, firsts, len(chunks))

    def restatements(self, day: int) -> Table:
        """Rows of the two previous stat dates sent again with corrected (fewer) clicks and spend."""
        days = [d for d in (day - 2, day - 1) if d in self.spend_history]
        if not days:
            return {}
        prev = concat([self.spend_history[d] for d in days])
        rng = self.rng(STREAM_FAULTS, SOURCE_NO["ad_spend"], day, 7)
        cand = np.nonzero((prev["clicks"] >= 1) & ~prev["restated"])[0]
        k = min(len(cand), max(1, int(round(0.005 * nrows(prev)))))
        if k == 0:
            return {}
        pick = np.sort(cand[_sample(rng, len(cand), k)])
        r = take(prev, pick)
        offset = 0
        for d in days:  # a row is restated at most once
            h = self.spend_history[d]
            m = len(h["sday"])
            mine = pick[(pick >= offset) & (pick < offset + m)] - offset
            h["restated"][mine] = True
            offset += m
        r.pop("restated")
        cpc = r["spend"] // r["clicks"]
        cut = np.maximum(1, np.round(r["clicks"] * rng.uniform(0.05, 0.3, k))).astype(np.int64)
        r["clicks"] = r["clicks"] - cut
        r["spend"] = r["clicks"] * cpc
        r["ftag"] = np.full(k, FT_RESTATED, dtype=np.int8)
        return r

    def write_missing_column_csv(self, day: int, rows: list[str], j: int) -> None:
        """A CSV without the ``spend`` column; its rows copy real rows (every row quarantined)."""
        lines = [r.rsplit(",", 1)[0] for r in rows]
        name = self.file_name("ad_spend", day, j)
        header = CSV_HEADER.rsplit(",", 1)[0]
        (self.landing / name).write_bytes(("\n".join([header, *lines]) + "\n").encode())
        for i in range(len(lines)):
            self.entry("ad_spend", day, name, i + 1, "missing_column_spend", "file:missing_column:spend")
        self.count("ad_spend", day, name, len(lines))


class _FaultPlanner:
    """Record faults of one source-day, decided file by file as the files are built.

    Per kind, the day's count (``faults.kind_counts``) is spread over the files by size up front;
    duplicates of an earlier file of the day come from a sample of rows kept from the files already
    written, duplicates of earlier days from ``_Run.stash``."""

    def __init__(self, run: _Run, source: str, day: int, sizes: list[int]):
        self.run, self.source, self.day = run, source, day
        self.rng = run.rng(STREAM_FAULTS, SOURCE_NO[source], day)
        self.kinds: list[FaultKind] = KINDS[source]
        counts = kind_counts(self.rng, self.kinds, sum(sizes), run.day_index(day))
        sizes_a = np.asarray(sizes, dtype=np.float64)
        self.alloc: list[np.ndarray] = []
        for kind, count in zip(self.kinds, counts, strict=True):
            if day == run.d_end and run.kind_total[(source, kind.name)] == 0:
                count = max(count, 1)  # every kind at least once per run
            w = sizes_a.copy()
            if kind.scope == "cross_file":
                w[0] = 0.0
            if count == 0 or w.sum() == 0:
                self.alloc.append(np.zeros(len(sizes), dtype=np.int64))
            else:
                self.alloc.append(self.rng.multinomial(count, w / w.sum()))
        self.today: list = []  # sample rows of the files written so far

    def plan_file(self, j: int, f: _File) -> None:
        f.used = f.tags != 0
        for kind, alloc in zip(self.kinds, self.alloc, strict=True):
            if alloc[j]:
                done = self._plan(kind, int(alloc[j]), f)
                self.run.kind_total[(self.source, kind.name)] += done

    def _record(self, f: _File, i: int):
        return f.base[i].as_py()[:-1] if self.source != "traffic" else f.base.slice(i, 1).to_pylist()[0]

    def _plan(self, kind: FaultKind, count: int, f: _File) -> int:
        rng = self.rng
        if kind.scope in ("cross_day", "cross_file"):
            if kind.scope == "cross_file":
                pool = self.today
            else:
                stash = self.run.stash[self.source]
                pool = stash.get(self.day - 1, []) + stash.get(self.day - 2, [])
            picks = np.sort(_sample(rng, len(pool), count))
            for p in picks:
                f.edits.append(_Edit(int(rng.integers(0, f.n)), "after", pool[p], kind.name, kind.rule))
            return len(picks)
        ok = ~f.used
        if kind.cond is not None:
            ok &= kind.cond(f.cols)
        cand = np.nonzero(ok)[0]
        picks = np.sort(cand[_sample(rng, len(cand), count)])
        for i in picks:
            i = int(i)
            f.used[i] = True
            record = self._record(f, i)
            payload = kind.make(record, rng) if kind.make is not None else record
            if self.source == "traffic" and kind.rule not in ("duplicate", None):
                payload["event_id"] = self.run.fresh_event_id(self.day)
            if kind.op == "replace":
                f.edits.append(_Edit(i, "replace", payload, kind.name, kind.rule))
            elif kind.scope == "same_file":
                anchor = i + int(rng.integers(0, min(20, f.n - i)))
                f.edits.append(_Edit(anchor, "after", payload, kind.name, kind.rule))
            else:
                f.edits.append(_Edit(i, "after", payload, kind.name, kind.rule))
        return len(picks)

    def after_file(self, f: _File) -> None:
        """Keep a few untouched rows for duplicates in later files (today) and later dt folders."""
        idx = np.nonzero(~f.used)[0]
        idx = np.sort(idx[_sample(self.rng, len(idx), 20)])
        rows = [self._record(f, int(i)) for i in idx]
        self.today.extend(rows)
        self.run.stash[self.source].setdefault(self.day, []).extend(rows)


def _sample(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``k`` distinct random indexes out of ``n`` (cheap when k << n)."""
    k = min(k, n)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if n <= 20 * k:
        return rng.choice(n, k, replace=False)
    idx = rng.integers(0, n, 2 * k + 8)
    _, first = np.unique(idx, return_index=True)
    out = idx[np.sort(first)]
    return out[:k] if len(out) >= k else rng.choice(n, k, replace=False)


def _segments(n_base: int, edits: list[_Edit]) -> tuple[list[tuple], dict[int, int], np.ndarray]:
    """The final file as a sequence of ``("base", a, b)`` (base rows a..b-1) and ``("edit", k)``
    segments; the 1-based line of every edit; and the sorted insert positions (for base lines)."""
    actions = sorted(
        [(e.anchor + 1, 0, k) for k, e in enumerate(edits) if e.op == "after"]
        + [(e.anchor, 1, k) for k, e in enumerate(edits) if e.op == "replace"]
    )
    segs: list[tuple] = []
    edit_line: dict[int, int] = {}
    cur = line = 0
    for pos, typ, k in actions:
        if pos > cur:
            segs.append(("base", cur, pos))
            line += pos - cur
            cur = pos
        segs.append(("edit", k))
        line += 1
        edit_line[k] = line
        if typ == 1:
            cur = pos + 1
    if cur < n_base:
        segs.append(("base", cur, n_base))
    ins_pos = np.array(sorted(e.anchor + 1 for e in edits if e.op == "after"), dtype=np.int64)
    return segs, edit_line, ins_pos


def _base_lines(rows: np.ndarray, ins_pos: np.ndarray) -> np.ndarray:
    """1-based final line of base rows ``rows`` given the insert positions."""
    return rows + 1 + np.searchsorted(ins_pos, rows, side="right")


def _write_text(path: Path, f: _File, segs: list[tuple], header: str | None) -> int:
    base = f.base
    suffix = ""
    if f.extra_column:  # CSV with an extra unknown column
        base = pa.array([s[:-1] + ",CNY\n" for s in base.to_pylist()], pa.string())
        header, suffix = header + ",currency", ",CNY"
    offs, data = R.string_offsets(base)
    n = 0
    with open(path, "wb") as fh:
        out = gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=1, mtime=0) if f.gz else fh
        if header is not None:
            out.write((header + "\n").encode())
        for seg in segs:
            if seg[0] == "base":
                out.write(data[offs[seg[1]] : offs[seg[2]]])
                n += seg[2] - seg[1]
            else:
                out.write((f.edits[seg[1]].payload + suffix + "\n").encode())
                n += 1
        if f.gz:
            out.close()
    return n


def _write_parquet(path: Path, f: _File, segs: list[tuple]) -> int:
    extra = pa.Table.from_pylist([e.payload for e in f.edits], schema=TRAFFIC_SCHEMA)
    parts = [f.base.slice(s[1], s[2] - s[1]) if s[0] == "base" else extra.slice(s[1], 1) for s in segs]
    final = pa.concat_tables(parts) if parts else f.base
    if f.extra_column:
        n = final.num_rows
        final = final.append_column("device", pa.array(np.where(np.arange(n) % 3 == 0, "ios", "android")))
    pq.write_table(final, path, **PARQUET_OPTIONS)
    return final.num_rows


def _as_date(d) -> dt.date:
    if isinstance(d, dt.datetime):
        return d.date()
    if isinstance(d, dt.date):
        return d
    return dt.date.fromisoformat(str(d))


def generate_landing(
    landing_dir: str | Path,
    start: dt.date,
    end: dt.date,
    *,
    orders_per_day: int = 1000,
    seed: int = 7,
    faults: bool = False,
    warmup_days: int = 0,
) -> GenerationSummary:
    """Write a deterministic landing zone for business days ``start..end`` (inclusive).

    Same arguments -> byte-identical files. Existing ``part-*`` files in the dt folders of the range
    are replaced; nothing else under ``landing_dir`` is touched (apart from ``_generator/``).

    ``warmup_days``: the simulated platform already runs that many days before ``start`` (a
    pipeline started on a live platform): the first landed days carry the status updates,
    returns, ad counts and traffic of the orders of those days (their earlier records are not
    landed), so every day's input has the steady-state size instead of growing from an empty
    world. 0 (the default): the world starts on ``start``.
    """
    start, end = _as_date(start), _as_date(end)
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if orders_per_day < 1:
        raise ValueError("orders_per_day must be >= 1")
    if orders_per_day >= ORDER_SEQ:
        raise ValueError(f"orders_per_day must be < {ORDER_SEQ}")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if warmup_days < 0:
        raise ValueError("warmup_days must be >= 0")
    landing = Path(landing_dir)
    landing.mkdir(parents=True, exist_ok=True)
    run = _Run(landing, R.day_number(start), R.day_number(end), orders_per_day, seed, faults, warmup_days)
    run.run()

    entries = sorted(run.entries, key=lambda e: (e["source"], e["dt"], e["file"], e["line"] or 0, e["fault"]))
    w = run.world
    summary = GenerationSummary(
        landing_dir=str(landing),
        start=start.isoformat(),
        end=end.isoformat(),
        orders_per_day=orders_per_day,
        seed=seed,
        faults=faults,
        warmup_days=warmup_days,
        records={s: dict(sorted(run.records[s].items())) for s in SOURCES},
        files={s: {d: sorted(v) for d, v in sorted(run.files[s].items())} for s in SOURCES},
        cohorts=run.cohorts,
        world={
            "merchants": w.n_merchants,
            "users": w.n_users,
            "spus": w.n_spu,
            "skus": w.n_sku,
            "campaigns": w.n_campaigns,
            "advertisers": int(len(np.unique(w.camp_advertiser))),
            "dud_campaigns": int(w.camp_dud.sum()),
        },
        injected_faults=entries,
    )
    gen = landing / GENERATOR_DIR
    if gen.is_dir():
        shutil.rmtree(gen)
    gen.mkdir(parents=True)
    (gen / "faults.json").write_text(json.dumps(entries, indent=1) + "\n")
    (gen / "summary.json").write_text(json.dumps(summary.to_json_dict(), indent=2, sort_keys=True) + "\n")
    return summary


__all__ = ["GenerationSummary", "generate_landing", "TRAFFIC_SCHEMA"]
