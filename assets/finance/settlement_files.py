"""SPEC §7: the daily refund settlement files for finance, and the commands that inspect them.

Layout: ``<settlements>/dt=D/ad_fee_refunds_D.csv``, ``merchant_summary_D.csv``, ``manifest.json``.
The CSVs are rendered in plain Python from one day's ledger rows (a day is small), so that every
byte is under our control: UTF-8 without BOM, ``\\n``, RFC 4180 quoting only when needed, null as
an empty field, dates ``YYYY-MM-DD``, timestamps ``YYYY-MM-DDTHH:MM:SS+08:00``, amounts with
exactly two decimals.

Publication is atomic: a new day is assembled in a temporary directory beside its final place and
renamed into place (the manifest is written last inside it); a regeneration compares the new CSVs
with the published ones byte for byte and raises :class:`SettlementMismatchError`, touching
nothing, if they differ.

Only local paths are supported; every filesystem access goes through the ``_fs_*`` helpers below,
the one place to extend for object stores.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from assets.finance.schemas import LEDGER_COLUMNS, LEDGER_SCHEMA

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
MANIFEST_NAME = "manifest.json"
SUMMARY_COLUMNS = ("settlement_date", "merchant_id", "entries", "ad_fee_refund")
REFUND_SORT = ("merchant_id", "order_id", "return_id", "entry_type")
_TIMESTAMP_COLUMNS = tuple(f.name for f in LEDGER_SCHEMA.fields if f.dataType.typeName() == "timestamp")
_DATE_COLUMNS = tuple(f.name for f in LEDGER_SCHEMA.fields if f.dataType.typeName() == "date")
_AMOUNT_COLUMNS = tuple(f.name for f in LEDGER_SCHEMA.fields if f.dataType.typeName() == "decimal")
CENT = Decimal("0.01")


class SettlementMismatchError(RuntimeError):
    """A regeneration of a published settlement day would give different files."""


def refunds_file_name(day: dt.date) -> str:
    return f"ad_fee_refunds_{day.isoformat()}.csv"


def summary_file_name(day: dt.date) -> str:
    return f"merchant_summary_{day.isoformat()}.csv"


def day_dir_name(day: dt.date) -> str:
    return f"dt={day.isoformat()}"


# --- filesystem: the one place that touches paths ------------------------------------------------


def _fs_join(*parts: str) -> str:
    return os.path.join(*parts)


def _fs_exists(path: str) -> bool:
    return os.path.exists(path)


def _fs_read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _fs_list(path: str) -> list[str]:
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def _fs_write_new(path: str, content: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _fs_replace_file(path: str, content: bytes) -> None:
    """Atomically replace ``path``: write a temporary file in the same directory, then rename."""
    tmp = _fs_join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    _fs_write_new(tmp, content)
    os.replace(tmp, path)


def _fs_publish_dir(parent: str, name: str, files: Sequence[tuple[str, bytes]]) -> bool:
    """Create ``parent/name`` with ``files`` (in the given order) atomically.

    Returns False (and leaves nothing behind) if the directory appeared meanwhile.
    """
    os.makedirs(parent, exist_ok=True)
    tmp = _fs_join(parent, f".{name}.tmp-{uuid.uuid4().hex}")
    os.mkdir(tmp)
    try:
        for file_name, content in files:
            _fs_write_new(_fs_join(tmp, file_name), content)
        try:
            os.rename(tmp, _fs_join(parent, name))  # fails if the target exists and is not empty
        except OSError:
            if _fs_exists(_fs_join(parent, name)):
                return False
            raise
        return True
    finally:
        if _fs_exists(tmp):
            for file_name in os.listdir(tmp):
                os.remove(_fs_join(tmp, file_name))
            os.rmdir(tmp)


# --- formatting -----------------------------------------------------------------------------------


def format_amount(value: Decimal | None) -> str:
    if value is None:
        return ""
    quantized = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    if quantized == 0:
        quantized = Decimal("0.00")  # never "-0.00"
    return f"{quantized:.2f}"


def format_timestamp(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return value.astimezone(BUSINESS_TZ).replace(microsecond=0).isoformat()


def format_date(value: dt.date | None) -> str:
    return "" if value is None else value.isoformat()


def _field(value: str) -> str:
    if any(ch in value for ch in (",", '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    lines = [",".join(_field(v) for v in header)]
    lines.extend(",".join(_field(v) for v in row) for row in rows)
    return ("\n".join(lines) + "\n").encode("utf-8")


def _format_ledger_value(column: str, value) -> str:
    if value is None:
        return ""
    if column in _AMOUNT_COLUMNS:
        return format_amount(value)
    if column in _TIMESTAMP_COLUMNS:
        return format_timestamp(value)
    if column in _DATE_COLUMNS:
        return format_date(value)
    return str(value)


def _sort_key(row: Mapping) -> tuple:
    return tuple(row[c] or "" for c in REFUND_SORT)


def render_refunds_csv(rows: Sequence[Mapping]) -> bytes:
    """``ad_fee_refunds_D.csv``: SPEC §6 columns, sorted by merchant, order, return, entry type."""
    ordered = sorted(rows, key=_sort_key)
    return csv_bytes(
        LEDGER_COLUMNS, ([_format_ledger_value(c, r[c]) for c in LEDGER_COLUMNS] for r in ordered)
    )


def merchant_summary(day: dt.date, rows: Sequence[Mapping]) -> list[dict]:
    totals: dict[str, list] = {}
    for row in rows:
        entry = totals.setdefault(row["merchant_id"], [0, Decimal("0.00")])
        entry[0] += 1
        entry[1] += Decimal(row["ad_fee_refund"])
    return [
        {"settlement_date": day, "merchant_id": m, "entries": n, "ad_fee_refund": total}
        for m, (n, total) in sorted(totals.items(), key=lambda kv: kv[0] or "")
    ]


def render_summary_csv(day: dt.date, rows: Sequence[Mapping]) -> bytes:
    summary = merchant_summary(day, rows)
    return csv_bytes(
        SUMMARY_COLUMNS,
        (
            [
                format_date(s["settlement_date"]),
                s["merchant_id"] or "",
                str(s["entries"]),
                format_amount(s["ad_fee_refund"]),
            ]
            for s in summary
        ),
    )


def _total(rows: Sequence[Mapping]) -> Decimal:
    return sum((Decimal(r["ad_fee_refund"]) for r in rows), Decimal("0.00"))


def render_day(day: dt.date, rows: Sequence[Mapping]) -> dict[str, dict]:
    """The CSVs of settlement day D: ``name -> {content, rows, amount_total}`` (refunds first)."""
    for row in rows:
        if row["settlement_date"] != day:
            raise ValueError(f"ledger row of {row['settlement_date']} given for settlement day {day}")
    total = format_amount(_total(rows))
    return {
        refunds_file_name(day): {
            "content": render_refunds_csv(rows),
            "rows": len(rows),
            "amount_total": total,
        },
        summary_file_name(day): {
            "content": render_summary_csv(day, rows),
            "rows": len({r["merchant_id"] for r in rows}),
            "amount_total": total,
        },
    }


def file_entry(name: str, content: bytes, rows: int, amount_total: str) -> dict:
    return {
        "name": name,
        "rows": rows,
        "sha256": hashlib.sha256(content).hexdigest(),
        "amount_total": amount_total,
    }


def manifest_bytes(manifest: Mapping) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _now() -> str:
    return dt.datetime.now(BUSINESS_TZ).replace(microsecond=0).isoformat()


# --- publishing -----------------------------------------------------------------------------------


def publish_day(
    settlement_dir: str,
    day: dt.date,
    rows: Sequence[Mapping],
    *,
    source_tables: Mapping[str, int | None] | None = None,
    generated_at: str | None = None,
) -> dict:
    """Write (or regenerate) the settlement files of ``day`` from its ledger rows.

    Returns the manifest plus ``status``: ``published`` (new day), ``unchanged`` (regeneration gave
    the same CSVs; the manifest's run information is refreshed) or ``repaired`` (missing CSVs were
    restored). Raises :class:`SettlementMismatchError` if a published CSV would change.
    """
    rendered = render_day(day, rows)
    entries = [file_entry(name, f["content"], f["rows"], f["amount_total"]) for name, f in rendered.items()]
    generated = generated_at or _now()
    manifest = {
        "date": day.isoformat(),
        "files": entries,
        "run": {
            "generated_at": generated,
            "first_generated_at": generated,
            "source_tables": dict(source_tables or {}),
        },
    }
    day_dir = _fs_join(settlement_dir, day_dir_name(day))
    if not _fs_exists(day_dir):
        files = [(name, f["content"]) for name, f in rendered.items()] + [
            (MANIFEST_NAME, manifest_bytes(manifest))
        ]
        if _fs_publish_dir(settlement_dir, day_dir_name(day), files):
            return {**manifest, "status": "published"}

    # Regeneration: the published CSVs must come out byte for byte the same.
    differing = [
        name
        for name, f in rendered.items()
        if _fs_exists(_fs_join(day_dir, name)) and _fs_read(_fs_join(day_dir, name)) != f["content"]
    ]
    if differing:
        raise SettlementMismatchError(
            f"Regenerating settlement day {day} gives different files than those published in {day_dir}: "
            f"{', '.join(differing)}. The published files were left untouched; the ledger of that day "
            "has changed since publication and must be investigated."
        )
    missing = [name for name in rendered if not _fs_exists(_fs_join(day_dir, name))]
    for name in missing:
        _fs_replace_file(_fs_join(day_dir, name), rendered[name]["content"])
    manifest_path = _fs_join(day_dir, MANIFEST_NAME)
    try:
        previous = json.loads(_fs_read(manifest_path))
        manifest["run"]["first_generated_at"] = previous.get("run", {}).get("first_generated_at", generated)
    except (OSError, ValueError):
        pass
    _fs_replace_file(manifest_path, manifest_bytes(manifest))
    return {**manifest, "status": "repaired" if missing else "unchanged"}


def ledger_day_rows(ledger: DataFrame, day: dt.date) -> list[dict]:
    """The ledger rows of settlement day D as Python values (timestamps tz-aware, Asia/Shanghai).

    Timestamps leave Spark as epoch seconds so that the driver's time zone plays no part.
    """
    selected = ledger.filter(F.col("settlement_date") == F.lit(day)).select(
        *[
            F.unix_timestamp(F.col(c)).alias(c) if c in _TIMESTAMP_COLUMNS else F.col(c)
            for c in LEDGER_COLUMNS
        ]
    )
    rows = []
    for record in selected.collect():
        row = record.asDict()
        for column in _TIMESTAMP_COLUMNS:
            if row[column] is not None:
                row[column] = dt.datetime.fromtimestamp(row[column], tz=BUSINESS_TZ)
        rows.append(row)
    return rows


def publish_settlement_day(spark, cfg, day: dt.date) -> dict:
    """I/O step of the ``finance/settlement_files`` asset: the ledger of D -> the files of D."""
    from assets.finance.ledger import LEDGER_DAYS_TABLE, LEDGER_TABLE, computed_days, read_ledger
    from assets.storage import table_exists, table_version

    if day not in computed_days(spark, cfg):
        raise RuntimeError(
            f"The ledger has not been computed for settlement date {day}: refusing to publish "
            "('nothing to pay' must not be confused with 'not run')."
        )
    versions = {}
    for layer, name in (LEDGER_TABLE, LEDGER_DAYS_TABLE):
        path = cfg.table_path(layer, name)
        versions[f"{layer}/{name}"] = table_version(spark, path) if table_exists(spark, path) else None
    rows = ledger_day_rows(read_ledger(spark, cfg), day)
    return publish_day(cfg.settlement_dir, day, rows, source_tables=versions)


# --- the finance commands (`onetrack settlements list|show|verify`) -------------------------------


def _parse_csv(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))


def _read_manifest(day_dir: str) -> dict | None:
    path = _fs_join(day_dir, MANIFEST_NAME)
    if not _fs_exists(path):
        return None
    try:
        return json.loads(_fs_read(path))
    except ValueError:
        return None


def list_published(settlement_dir: str) -> list[dict]:
    """Every published settlement day, oldest first, with its refund rows and amount total."""
    days = []
    for name in _fs_list(settlement_dir):
        if not name.startswith("dt="):
            continue
        manifest = _read_manifest(_fs_join(settlement_dir, name))
        entry = {"date": name[3:], "path": _fs_join(settlement_dir, name)}
        if manifest is None:
            days.append({**entry, "status": "incomplete"})
            continue
        refunds = next((f for f in manifest.get("files", []) if f["name"].startswith("ad_fee_refunds_")), {})
        summary = next(
            (f for f in manifest.get("files", []) if f["name"].startswith("merchant_summary_")), {}
        )
        days.append(
            {
                **entry,
                "status": "published",
                "entries": refunds.get("rows"),
                "merchants": summary.get("rows"),
                "amount_total": refunds.get("amount_total"),
                "generated_at": manifest.get("run", {}).get("generated_at"),
            }
        )
    return days


def show_day(settlement_dir: str, day: dt.date) -> dict:
    """The published ledger rows of D grouped by merchant, with per-merchant and day totals."""
    day_dir = _fs_join(settlement_dir, day_dir_name(day))
    path = _fs_join(day_dir, refunds_file_name(day))
    if not _fs_exists(path):
        raise FileNotFoundError(f"settlement day {day} is not published ({path} missing)")
    table = _parse_csv(_fs_read(path))
    header, records = table[0], [dict(zip(table[0], r, strict=True)) for r in table[1:]]
    merchants: dict[str, dict] = {}
    for record in records:
        m = merchants.setdefault(
            record["merchant_id"],
            {
                "merchant_id": record["merchant_id"],
                "entries": 0,
                "ad_fee_refund": Decimal("0.00"),
                "rows": [],
            },
        )
        m["entries"] += 1
        m["ad_fee_refund"] += Decimal(record["ad_fee_refund"])
        m["rows"].append(record)
    total = sum((m["ad_fee_refund"] for m in merchants.values()), Decimal("0.00"))
    return {
        "date": day.isoformat(),
        "columns": header,
        "merchants": [
            {**m, "ad_fee_refund": format_amount(m["ad_fee_refund"])} for _, m in sorted(merchants.items())
        ],
        "entries": len(records),
        "ad_fee_refund": format_amount(total),
    }


def format_show(shown: Mapping) -> str:
    """Plain-text rendering of :func:`show_day` for the command line."""
    lines = [
        f"settlement date {shown['date']}: {shown['entries']} entries, ad_fee_refund {shown['ad_fee_refund']}"
    ]
    for merchant in shown["merchants"]:
        lines.append(
            f"  merchant {merchant['merchant_id']}: {merchant['entries']} entries, "
            f"ad_fee_refund {merchant['ad_fee_refund']}"
        )
        for row in merchant["rows"]:
            lines.append(
                f"    {row['entry_type']:<8} order {row['order_id']} return {row['return_id']} "
                f"campaign {row['campaign_id']} refund_amount {row['refund_amount']} "
                f"allocated_ad_fee {row['allocated_ad_fee']} ad_fee_refund {row['ad_fee_refund']}"
            )
    if not shown["merchants"]:
        lines.append("  nothing to refund")
    return "\n".join(lines)


def verify_day(settlement_dir: str, day: dt.date) -> list[str]:
    """Problems with the published files of D (empty list = OK).

    Checks the manifest is there and is for D, that the files present are exactly those it lists
    (both CSVs of D), and each CSV's SHA-256, row count, header and amount total.
    """
    day_dir = _fs_join(settlement_dir, day_dir_name(day))
    if not _fs_exists(day_dir):
        return [f"{day}: not published ({day_dir} missing)"]
    manifest = _read_manifest(day_dir)
    if manifest is None:
        return [f"{day}: {MANIFEST_NAME} missing or not valid JSON"]
    problems = []
    if manifest.get("date") != day.isoformat():
        problems.append(f"{MANIFEST_NAME}: date is {manifest.get('date')!r}, expected {day.isoformat()!r}")
    listed = {f.get("name"): f for f in manifest.get("files", [])}
    expected = {refunds_file_name(day): LEDGER_COLUMNS, summary_file_name(day): SUMMARY_COLUMNS}
    for name in sorted(set(expected) - set(listed)):
        problems.append(f"{MANIFEST_NAME}: does not list {name}")
    present = {n for n in _fs_list(day_dir) if n != MANIFEST_NAME and not n.startswith(".")}
    for name in sorted(present - set(listed)):
        problems.append(f"{name}: present but not in the manifest")
    for name, entry in sorted(listed.items()):
        path = _fs_join(day_dir, name)
        if not _fs_exists(path):
            problems.append(f"{name}: listed in the manifest but missing")
            continue
        content = _fs_read(path)
        if hashlib.sha256(content).hexdigest() != entry.get("sha256"):
            problems.append(f"{name}: sha256 differs from the manifest")
        try:
            table = _parse_csv(content)
        except (UnicodeDecodeError, csv.Error) as exc:
            problems.append(f"{name}: not readable as UTF-8 CSV ({exc})")
            continue
        if not table:
            problems.append(f"{name}: empty file (no header)")
            continue
        header, records = table[0], table[1:]
        if name in expected and tuple(header) != tuple(expected[name]):
            problems.append(f"{name}: header {header} differs from {list(expected[name])}")
        if len(records) != entry.get("rows"):
            problems.append(f"{name}: {len(records)} rows, manifest says {entry.get('rows')}")
        if "ad_fee_refund" in header:
            column = header.index("ad_fee_refund")
            try:
                total = format_amount(sum((Decimal(r[column]) for r in records), Decimal("0.00")))
            except (ArithmeticError, IndexError):
                problems.append(f"{name}: ad_fee_refund column not readable")
                continue
            if total != entry.get("amount_total"):
                problems.append(f"{name}: amount total {total}, manifest says {entry.get('amount_total')}")
    return problems
