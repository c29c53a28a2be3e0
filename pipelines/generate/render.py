"""Vectorised formatting of generated records: ids, money, timestamps, JSON/CSV lines, Arrow columns.

Everything here works on whole numpy/Arrow columns (no Python loop per row). Internally the generator
keeps ids as integers, money as integer fen (cents) and instants as integer seconds since the Unix
epoch (UTC); this module turns them into the landing-zone text and Parquet representations.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TZ_OFFSET = 8 * 3600  # Asia/Shanghai, no daylight saving
DAY = 86400
HOUR = 3600
EPOCH = dt.date(1970, 1, 1)

# timestamp rendering styles (per record)
TS_SHANGHAI, TS_Z, TS_UTC_OFFSET = 0, 1, 2
_TS_SUFFIX = pa.array(["+08:00", "Z", "+00:00"])


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01 of a calendar date (used for business days)."""
    return (d - EPOCH).days


def day_date(n: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(n))


def day_start_utc(day: int | np.ndarray):
    """UTC epoch second at which business day ``day`` (days since epoch) starts: 00:00 +08:00."""
    return day * DAY - TZ_OFFSET


def business_day(t: np.ndarray) -> np.ndarray:
    """Business day (days since epoch, Asia/Shanghai) of UTC epoch seconds."""
    return (t + TZ_OFFSET) // DAY


def business_hour(t: np.ndarray) -> np.ndarray:
    return ((t + TZ_OFFSET) % DAY) // HOUR


@lru_cache(maxsize=1)
def _hms_table() -> pa.Array:
    return pa.array([f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)])


@lru_cache(maxsize=1)
def _two_digits() -> pa.Array:
    return pa.array([f"{i:02d}" for i in range(100)])


@lru_cache(maxsize=1)
def _three_digits() -> pa.Array:
    return pa.array([f".{i:03d}" for i in range(1000)])


def _idx(a: np.ndarray) -> pa.Array:
    return pa.array(np.ascontiguousarray(a, dtype=np.int64))


def join(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays and Python string literals."""
    return pc.binary_join_element_wise(*parts, "")


def date_strings(days: np.ndarray, compact: bool = False) -> pa.Array:
    """``YYYY-MM-DD`` (or ``YYYYMMDD``) of day numbers."""
    days = np.asarray(days, dtype=np.int64)
    if len(days) == 0:
        return pa.array([], pa.string())
    d0, d1 = int(days.min()), int(days.max())
    fmt = "%Y%m%d" if compact else "%Y-%m-%d"
    table = pa.array([day_date(d).strftime(fmt) for d in range(d0, d1 + 1)])
    return table.take(_idx(days - d0))


def _fixed_width(buf: np.ndarray) -> pa.Array:
    """A string array from an (n, width) uint8 matrix of ASCII bytes."""
    n, width = buf.shape
    if n * width >= 2**31:
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
        typ = pa.large_string()
    else:
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        typ = pa.string()
    return pa.Array.from_buffers(
        typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(buf))]
    )


@lru_cache(maxsize=1)
def _digit_lut() -> np.ndarray:
    """ASCII digits of 0000..9999, each packed into one uint32 (native byte order, as in memory)."""
    x = np.arange(10000)
    digits = np.stack([x // 1000 % 10, x // 100 % 10, x // 10 % 10, x % 10], axis=1).astype(np.uint8) + 48
    return np.ascontiguousarray(digits).view(np.uint32).ravel()


def _put_digits(buf: np.ndarray, col: int, values: np.ndarray, width: int) -> None:
    """Write ``values`` zero-padded to ``width`` digits into ``buf[:, col:col + width]``."""
    x = np.asarray(values, dtype=np.int64)
    n = len(x)
    if n == 0:
        return
    if x.min() < 0 or (width < 18 and x.max() >= 10**width):
        raise ValueError(f"value does not fit in {width} digits")
    chunks = -(-width // 4)
    packed = np.empty((n, chunks), dtype=np.uint32)
    lut = _digit_lut()
    for j in range(chunks - 1, -1, -1):
        packed[:, j] = lut[x % 10000]
        x = x // 10000
    buf[:, col : col + width] = packed.view(np.uint8).reshape(n, 4 * chunks)[:, 4 * chunks - width :]


def ts_strings(secs: np.ndarray, style: np.ndarray, millis: np.ndarray | None = None) -> pa.Array:
    """ISO-8601 timestamps with offset from UTC epoch seconds.

    ``style`` per value: 0 -> local ``+08:00``, 1 -> UTC with ``Z``, 2 -> UTC with ``+00:00``.
    ``millis`` (optional) -> ``.mmm`` fraction where >= 0.
    """
    secs = np.asarray(secs, dtype=np.int64)
    style = np.asarray(style, dtype=np.int64)
    local = secs + np.where(style == TS_SHANGHAI, TZ_OFFSET, 0)
    days = (local // DAY).astype("datetime64[D]")
    sod = local % DAY
    months = days.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    mday = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    buf = np.empty((len(secs), 19), dtype=np.uint8)
    for col, ch in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":")):
        buf[:, col] = ord(ch)
    _put_digits(buf, 0, year, 4)
    _put_digits(buf, 5, month, 2)
    _put_digits(buf, 8, mday, 2)
    _put_digits(buf, 11, sod // HOUR, 2)
    _put_digits(buf, 14, sod % HOUR // 60, 2)
    _put_digits(buf, 17, sod % 60, 2)
    parts = [_fixed_width(buf)]
    if millis is not None and np.any(millis >= 0):
        frac = _three_digits().take(_idx(np.maximum(millis, 0)))
        parts.append(pc.if_else(pa.array(millis >= 0), frac, ""))
    parts.append(_TS_SUFFIX.take(_idx(style)))
    return join(*parts)


def int_strings(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def id_strings(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded number, e.g. ``u000001234`` (fixed width, vectorised)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    p = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    buf = np.empty((len(numbers), len(p) + width), dtype=np.uint8)
    buf[:, : len(p)] = p
    _put_digits(buf, len(p), numbers, width)
    return _fixed_width(buf)


def money_strings(cents: np.ndarray) -> pa.Array:
    """Non-negative integer fen as a decimal string with exactly 2 places (``5990`` -> ``59.90``)."""
    cents = np.asarray(cents, dtype=np.int64)
    if len(cents) and cents.min() < 0:
        raise ValueError("money_strings takes non-negative amounts")
    return join(int_strings(cents // 100), ".", _two_digits().take(_idx(cents % 100)))


def quoted(arr: pa.Array) -> pa.Array:
    return join('"', arr, '"')


def json_nullable(valid: np.ndarray, json_values: pa.Array) -> pa.Array:
    """JSON value where ``valid``, else the literal ``null``."""
    return pc.if_else(pa.array(np.asarray(valid, dtype=bool)), json_values, "null")


def pick(labels: list[str], codes: np.ndarray) -> pa.Array:
    """String labels of small integer codes."""
    return pa.array(labels).take(_idx(codes))


def decimal_from_cents(cents: np.ndarray, precision: int = 18, scale: int = 2) -> pa.Array:
    """A ``decimal128(precision, scale)`` Arrow array from integer units of 10^-scale (vectorised)."""
    lo = np.ascontiguousarray(cents, dtype="<i8")
    buf = np.empty(2 * len(lo), dtype="<i8")
    buf[0::2] = lo
    buf[1::2] = np.where(lo < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(lo), [None, pa.py_buffer(buf)])


def timestamp_utc(secs: np.ndarray) -> pa.Array:
    """``timestamp[us, tz=UTC]`` from UTC epoch seconds."""
    return pa.array(np.asarray(secs, dtype=np.int64) * 1_000_000, pa.timestamp("us", tz="UTC"))


def with_nulls(arr: pa.Array, valid: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(valid, dtype=bool)), arr, pa.scalar(None, arr.type))


def string_offsets(arr: pa.Array) -> tuple[np.ndarray, memoryview]:
    """(offsets, data) of a null-free (large_)string array: row ``i`` is ``data[off[i]:off[i+1]]``."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    bufs = arr.buffers()
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offs = np.frombuffer(
        bufs[1], dtype=off_type, count=n + 1, offset=arr.offset * np.dtype(off_type).itemsize
    )
    data = memoryview(bufs[2]) if bufs[2] is not None else memoryview(b"")
    return offs.astype(np.int64), data


def string_array_bytes(arr: pa.Array) -> memoryview:
    """The concatenated UTF-8 payload of a null-free (large_)string array, without copying."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if n == 0:
        return memoryview(b"")
    bufs = arr.buffers()
    off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offs = np.frombuffer(
        bufs[1], dtype=off_type, count=n + 1, offset=arr.offset * np.dtype(off_type).itemsize
    )
    return memoryview(bufs[2])[int(offs[0]) : int(offs[-1])]
