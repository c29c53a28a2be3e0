"""An independent, plain-Python reading of a landing zone against SPEC sections 2-3 (test oracle).

``classify_landing`` reads every file, in (source, dt, file name, line) order, and classifies every
record as the SPEC would: the first broken rule (parse, then per field in SPEC column order:
required, type, enum, range; then the consistency rules), else ``"duplicate"``, else accepted
(``None``). It also lists every broken rule so tests can assert that a fault breaks only one.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import gzip
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
DEC_RE = re.compile(r"^-?\d+(\.\d{1,2})?$")
INT_RE = re.compile(r"^-?\d+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def p_str(v):
    if not isinstance(v, str):
        raise ValueError
    return v


def p_int(v):
    if isinstance(v, bool):
        raise ValueError
    if isinstance(v, int):
        return v
    if isinstance(v, str) and INT_RE.match(v):
        return int(v)
    raise ValueError


def p_dec(v):
    if isinstance(v, decimal.Decimal):
        if v.as_tuple().exponent < -2:
            raise ValueError
        return v
    if not isinstance(v, str) or not DEC_RE.match(v):
        raise ValueError
    return decimal.Decimal(v)


def p_ts(v):
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            raise ValueError
        return v
    if not isinstance(v, str) or not TS_RE.match(v):
        raise ValueError
    return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))


def p_date(v):
    if not isinstance(v, str) or not DATE_RE.match(v):
        raise ValueError
    return dt.date.fromisoformat(v)


def _subsidy_ok(s, parsed):
    q, p = parsed.get("quantity"), parsed.get("unit_price")
    if s < 0:
        return False
    if q is None or p is None:
        return True
    return s < q * p


# (field, parser, required, enum, range(value, parsed_so_far) -> bool)
ORDER_SPEC = [
    ("order_id", p_str, True, None, None),
    ("user_id", p_str, True, None, None),
    ("merchant_id", p_str, True, None, None),
    ("product_id", p_str, True, None, None),
    ("spu_id", p_str, True, None, None),
    ("quantity", p_int, True, None, lambda v, p: v >= 1),
    ("unit_price", p_dec, True, None, lambda v, p: v > 0),
    ("platform_subsidy", p_dec, True, None, _subsidy_ok),
    ("voucher_pool", p_str, False, {"ad", "organic"}, None),
    ("status", p_str, True, {"paid", "shipped", "delivered", "completed", "cancelled"}, None),
    ("paid_at", p_ts, False, None, None),
    ("updated_at", p_ts, True, None, None),
]
# consistency rules see the raw record (is a value present?) and the typed values
ORDER_CONSISTENCY = [
    ("voucher_pool", lambda r, p: (r.get("voucher_pool") is None) == (p["platform_subsidy"] == 0)),
]
RETURN_SPEC = [
    ("return_id", p_str, True, None, None),
    ("order_id", p_str, True, None, None),
    ("return_type", p_str, True, {"refund_only", "return_and_refund"}, None),
    (
        "reason_code",
        p_str,
        True,
        {
            "found_cheaper",
            "quality_issue",
            "not_as_described",
            "wrong_item",
            "late_delivery",
            "changed_mind",
            "other",
        },
        None,
    ),
    ("status", p_str, True, {"requested", "approved", "rejected", "refunded", "cancelled"}, None),
    ("requested_at", p_ts, True, None, None),
    ("refunded_at", p_ts, False, None, None),
    ("refund_amount", p_dec, True, None, lambda v, p: v > 0),
    ("updated_at", p_ts, True, None, None),
]
RETURN_CONSISTENCY = [
    ("refunded_at", lambda r, p: (r.get("refunded_at") is not None) == (r.get("status") == "refunded")),
]
AD_SPEND_SPEC = [
    ("stat_date", p_date, True, None, None),
    ("stat_hour", p_int, True, None, lambda v, p: 0 <= v <= 23),
    ("advertiser_id", p_str, True, None, None),
    ("campaign_id", p_str, True, None, None),
    ("product_id", p_str, True, None, None),
    ("impressions", p_int, True, None, lambda v, p: v >= 0),
    (
        "clicks",
        p_int,
        True,
        None,
        lambda v, p: v >= 0 and (p.get("impressions") is None or v <= p["impressions"]),
    ),
    ("spend", p_dec, True, None, lambda v, p: v >= 0),
]
TRAFFIC_SPEC = [
    ("event_id", p_str, True, None, None),
    ("event_time", p_ts, True, None, None),
    ("user_id", p_str, True, None, None),
    ("product_id", p_str, True, None, None),
    ("spu_id", p_str, True, None, None),
    ("merchant_id", p_str, True, None, None),
    ("pool", p_str, True, {"ad", "organic"}, None),
    ("event_type", p_str, True, {"impression", "click"}, None),
    ("campaign_id", p_str, False, None, None),
    ("placement", p_str, True, {"feed", "live", "search", "mall"}, None),
    ("shown_price", p_dec, True, None, lambda v, p: v > 0),
]
TRAFFIC_CONSISTENCY = [
    ("campaign_id", lambda r, p: (r.get("campaign_id") is not None) == (r.get("pool") == "ad")),
]
SPECS = {
    "orders": (ORDER_SPEC, ORDER_CONSISTENCY),
    "returns": (RETURN_SPEC, RETURN_CONSISTENCY),
    "ad_spend": (AD_SPEND_SPEC, []),
    "traffic": (TRAFFIC_SPEC, TRAFFIC_CONSISTENCY),
}


def violations(source: str, record: dict) -> tuple[list[str], dict]:
    """All broken rules of a parsed record, in check order, and its typed fields."""
    spec, consistency = SPECS[source]
    out: list[str] = []
    parsed: dict = {}
    for name, parser, required, enum, rng in spec:
        v = record.get(name)
        if v is None or v == "" and source == "ad_spend":
            parsed[name] = None
            if required:
                out.append(f"{name}:required")
            continue
        try:
            pv = parser(v)
        except (ValueError, decimal.InvalidOperation):
            parsed[name] = None
            out.append(f"{name}:type")
            continue
        if enum is not None and pv not in enum:
            out.append(f"{name}:enum")
            parsed[name] = None
            continue
        if rng is not None and not rng(pv, parsed):
            out.append(f"{name}:range")
        parsed[name] = pv
    for name, ok in consistency:
        try:
            good = ok(record, parsed)
        except TypeError:
            good = True
        if not good:
            out.append(f"{name}:consistency")
    return out, parsed


@dataclass
class Record:
    source: str
    dt: str
    file: str
    line: int | None
    rule: str | None  # first broken rule, "duplicate", or None (accepted)
    all_rules: list[str] = field(default_factory=list)
    raw: object = None  # the line text (JSONL/CSV) or the row dict (Parquet)
    typed: dict | None = None


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8")


def iter_files(landing: Path):
    for source in ("orders", "returns", "ad_spend", "traffic"):
        root = landing / source
        if not root.is_dir():
            continue
        for folder in sorted(root.glob("dt=*")):
            for path in sorted(folder.iterdir()):
                yield source, folder.name[3:], path


def classify_landing(landing: str | Path) -> list[Record]:
    landing = Path(landing)
    out: list[Record] = []
    seen: dict[str, set] = {s: set() for s in SPECS}
    for source, dt_, path in iter_files(landing):
        rel = path.relative_to(landing).as_posix()
        rows: list[tuple[int, object, dict | None]] = []  # (line, raw, record or None if unparseable)
        if source == "traffic":
            try:
                table = pq.read_table(path)
            except Exception:
                out.append(Record(source, dt_, rel, None, "file:unreadable"))
                continue
            for i, row in enumerate(table.to_pylist()):
                rows.append((i + 1, row, row))
        elif source == "ad_spend":
            reader = csv.DictReader(io.StringIO(_read_text(path)))
            missing = [c for c, *_ in AD_SPEND_SPEC if c not in reader.fieldnames]
            for i, row in enumerate(reader):
                if missing:
                    out.append(Record(source, dt_, rel, i + 1, f"file:missing_column:{missing[0]}", raw=row))
                    continue
                rows.append((i + 1, row, row))
        else:
            for i, line in enumerate(_read_text(path).split("\n")[:-1]):
                try:
                    rec = json.loads(line)
                    if not isinstance(rec, dict):
                        rec = None
                except json.JSONDecodeError:
                    rec = None
                rows.append((i + 1, line, rec))
        spec = SPECS[source][0]
        for line, raw, rec in rows:
            if rec is None:
                out.append(Record(source, dt_, rel, line, "json:malformed", ["json:malformed"], raw))
                continue
            broken, typed = violations(source, rec)
            if broken:
                out.append(Record(source, dt_, rel, line, broken[0], broken, raw, typed))
                continue
            key = typed["event_id"] if source == "traffic" else tuple(typed[c] for c, *_ in spec)
            rule = "duplicate" if key in seen[source] else None
            seen[source].add(key)
            out.append(Record(source, dt_, rel, line, rule, [], raw, typed))
    return out
