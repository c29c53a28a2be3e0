"""Behaviour simulation: a day's orders (a "cohort") with everything they cause, and background traffic.

A cohort is the set of orders created on one business day. Simulating it yields, all at once and
vectorised: every version of every order (paid -> shipped -> delivered -> completed, cancellations),
the buyers' clicks and impressions before paying (which decide attribution), lower-price
re-exposures after paying, and the returns with all their versions. Each record carries the
business day it lands on (``land``); the caller buffers records until that landing day is written.

Internal representation: a table is a ``dict[str, np.ndarray]`` of equal-length columns; ids are
integers, money is integer fen, instants are UTC epoch seconds.
"""

from __future__ import annotations

import numpy as np

from .render import DAY, HOUR, business_day, business_hour, day_start_utc
from .world import HOUR_WEIGHTS, World, cdf, sample_cdf

Table = dict  # str -> np.ndarray

# ---- enums (codes are indexes into these label lists) ------------------------------------------
ORDER_STATUS = ["paid", "shipped", "delivered", "completed", "cancelled"]
PAID, SHIPPED, DELIVERED, COMPLETED, CANCELLED = range(5)
POOLS = ["ad", "organic"]
AD, ORGANIC = 0, 1
EVENT_TYPES = ["impression", "click"]
IMPRESSION, CLICK = 0, 1
PLACEMENTS = ["feed", "live", "search", "mall"]
RETURN_TYPES = ["refund_only", "return_and_refund"]
REASONS = [
    "found_cheaper",
    "quality_issue",
    "not_as_described",
    "wrong_item",
    "late_delivery",
    "changed_mind",
    "other",
]
FOUND_CHEAPER = 0
RETURN_STATUS = ["requested", "approved", "rejected", "refunded", "cancelled"]
R_REQUESTED, R_APPROVED, R_REJECTED, R_REFUNDED, R_CANCELLED = range(5)

# ---- fault tags carried by records (0 = a normal record) ---------------------------------------
FT_NONE = 0
FT_LATE = 1  # record of day D-2 landing in dt=D
FT_OUT_OF_ORDER = 2  # an older order version landing after a newer one
FT_RESENT = 3  # a new order version with the same content and a later updated_at
FT_RETURN_BEFORE_ORDER = 4  # a return landing before its order's first version
FT_RESTATED = 5  # an ad-spend row restated in a later dt with corrected figures
FT_LATE_RETURN = 6  # a return version landing the day after its updated_at (fast timelines below)
TAG_FAULTS = {
    FT_LATE: "late_record",
    FT_OUT_OF_ORDER: "out_of_order_version",
    FT_RESENT: "superseded_version",
    FT_RETURN_BEFORE_ORDER: "return_before_order",
    FT_RESTATED: "restatement",
    FT_LATE_RETURN: "late_return",
}

ORDER_SEQ = 10**7  # order key = day * ORDER_SEQ + sequence within the day
RANK_BITS = 21  # tie-break rank of traffic events within one second
NOISE_PER_ORDER = 17.6  # background events per order; cohort events add ~2.4 -> ~20 per order

# Behaviour parameters.
P_TARGET = np.array([0.35, 0.35, 0.30])  # intended last click: ad, organic, none (direct)
P_UNPAID = 0.03
P_CANCEL_AFTER_PAY = 0.01
P_VOUCHER = 0.15
P_REEXPOSED = 0.25
P_RETURN_BASE = 0.07
P_RETURN_REEXPOSED = 0.21  # 3x
P_MULTI_RETURN = 0.06
P_SLOW_REFUND = 0.05  # requested 15-20 days after paying, refunded ~27-37 days after
P_REVERSAL = 0.03
MAX_CLICK_LEAD_DAYS = 10  # clicks are at most this long before paying
REEXPOSURE_MEAN_LAG = 10 * HOUR  # lower-price re-exposure: mean time after paying (exponential)
REQUEST_MEAN_LAG = 8 * HOUR  # return request of a re-exposed order: mean time after the last exposure


def concat(tables: list[Table]) -> Table:
    tables = [t for t in tables if t]
    if not tables:
        return {}
    keys = list(tables[0])
    return {k: np.concatenate([t[k] for t in tables]) for k in keys}


def take(t: Table, idx) -> Table:
    return {k: v[idx] for k, v in t.items()}


def nrows(t: Table) -> int:
    return len(next(iter(t.values()))) if t else 0


COMPACT = {
    "user": np.int32,
    "sku": np.int32,
    "qty": np.int8,
    "price": np.int32,
    "subsidy": np.int32,
    "camp": np.int32,
    "land": np.int32,
    "rank": np.int32,
}


def compact(t: Table) -> Table:
    """Smaller integer types for buffered records (values are range-checked)."""
    out = {}
    for k, v in t.items():
        typ = COMPACT.get(k)
        if typ is not None and len(v) and v.dtype != typ:
            info = np.iinfo(typ)
            if v.min() >= info.min and v.max() <= info.max:
                v = v.astype(typ)
        out[k] = v
    return out


def split_by_land(t: Table) -> dict[int, Table]:
    """``{land day: rows}``."""
    if not t or nrows(t) == 0:
        return {}
    order = np.argsort(t["land"], kind="stable")
    land = t["land"][order]
    days, starts = np.unique(land, return_index=True)
    bounds = list(starts) + [len(land)]
    return {int(d): take(t, order[bounds[i] : bounds[i + 1]]) for i, d in enumerate(days)}


def _u(rng, n, lo, hi) -> np.ndarray:
    return rng.uniform(lo, hi, n)


def _secs(x) -> np.ndarray:
    return np.round(x).astype(np.int64)


def _ts_style(rng, n) -> np.ndarray:
    """How a record writes its timestamps: mostly +08:00, some UTC as Z or +00:00."""
    u = rng.random(n)
    return np.where(u < 0.88, 0, np.where(u < 0.94, 1, 2)).astype(np.int8)


def _placement(rng, pool) -> np.ndarray:
    u = rng.random(len(pool))
    ad_pl = np.where(u < 0.45, 0, np.where(u < 0.75, 1, 2))
    org_pl = np.where(u < 0.35, 0, np.where(u < 0.55, 1, np.where(u < 0.80, 2, 3)))
    return np.where(pool == AD, ad_pl, org_pl).astype(np.int8)


def _col(x, n: int, dtype) -> np.ndarray:
    return np.full(n, x, dtype=dtype) if np.ndim(x) == 0 else np.asarray(x, dtype=dtype)


def _events(rng, time, user, sku, pool, etype, camp, price) -> Table:
    n = len(time)
    pool = _col(pool, n, np.int8)
    return {
        "time": _col(time, n, np.int64),
        "rank": rng.integers(1, (1 << RANK_BITS) - 1, n),
        "user": _col(user, n, np.int64),
        "sku": _col(sku, n, np.int64),
        "pool": pool,
        "etype": _col(etype, n, np.int8),
        "camp": _col(camp, n, np.int64),
        "placement": _placement(rng, pool),
        "price": _col(price, n, np.int64),
        "ftag": np.zeros(n, dtype=np.int8),
        "nolate": np.zeros(n, dtype=bool),
        "land": business_day(_col(time, n, np.int64)),
    }


def _with_impressions(rng, clicks: Table) -> Table:
    """Each click preceded (1-300 s) by an impression of the same item in the same slot."""
    imp = dict(clicks)
    imp["time"] = clicks["time"] - rng.integers(1, 301, nrows(clicks))
    imp["etype"] = np.full(nrows(clicks), IMPRESSION, dtype=np.int8)
    imp["rank"] = rng.integers(1, (1 << RANK_BITS) - 1, nrows(clicks))
    imp["nolate"] = np.zeros(nrows(clicks), dtype=bool)
    imp["land"] = business_day(imp["time"])
    return concat([clicks, imp])


def simulate_cohort(world: World, day: int, orders_per_day: int, rng: np.random.Generator) -> dict:
    """Orders created on business ``day`` and everything they cause. Returns tables (not yet landed)."""
    n = orders_per_day
    w = world
    seq = np.arange(n, dtype=np.int64)
    okey = day * ORDER_SEQ + seq

    # ---- what is bought, by whom, for how much ------------------------------------------------
    target = sample_cdf(cdf(P_TARGET), rng.random(n))  # 0 ad, 1 organic, 2 direct
    is_ad = target == 0
    camp = np.full(n, -1, dtype=np.int64)
    camp[is_ad] = sample_cdf(w.camp_order_cdf, rng.random(int(is_ad.sum())))
    sku = sample_cdf(w.sku_pop_cdf, rng.random(n))
    sku[is_ad] = w.camp_product[camp[is_ad]]
    user = w.user_perm[(w.n_users * rng.random(n) ** 2).astype(np.int64)]
    qty = sample_cdf(cdf([0.82, 0.13, 0.05]), rng.random(n)) + 1
    price = w.sku_price[sku]
    amount = qty * price
    has_voucher = (rng.random(n) < P_VOUCHER) & (amount > 200)
    subsidy = np.round(amount * _u(rng, n, 0.03, 0.30) / 100.0).astype(np.int64) * 100
    subsidy = np.where(has_voucher, np.clip(subsidy, 100, amount - 1), 0)
    vpool = np.where(has_voucher, rng.integers(0, 2, n), -1).astype(np.int8)
    hour = sample_cdf(cdf(HOUR_WEIGHTS), rng.random(n))
    t = day_start_utc(day) + hour * HOUR + rng.integers(0, HOUR, n)

    unpaid = rng.random(n) < P_UNPAID
    cancel_after_pay = ~unpaid & (rng.random(n) < P_CANCEL_AFTER_PAY)
    normal = ~unpaid & ~cancel_after_pay

    # ---- order versions -------------------------------------------------------------------------
    order_attrs = {
        "okey": okey,
        "user": user,
        "sku": sku,
        "qty": qty,
        "price": price,
        "subsidy": subsidy,
        "vpool": vpool,
    }

    def versions(mask, status, paid, upd, ver) -> Table:
        idx = np.nonzero(mask)[0]
        m = len(idx)
        tab = {k: v[idx] for k, v in order_attrs.items()}
        tab["status"] = np.full(m, status, dtype=np.int8) if np.isscalar(status) else status[idx]
        tab["paid"] = paid[idx]
        tab["upd"] = upd[idx]
        tab["ver"] = np.full(m, ver, dtype=np.int8)
        return tab

    paid_at = np.where(unpaid, -1, t)
    first_upd = np.where(unpaid, t + rng.integers(300, 7200, n), t)
    first_status = np.where(unpaid, CANCELLED, PAID).astype(np.int8)
    shipped = t + _secs(_u(rng, n, 0.1, 2.0) * DAY)
    delivered = shipped + _secs(_u(rng, n, 1.0, 4.0) * DAY)
    completed = delivered + _secs(_u(rng, n, 3.0, 8.0) * DAY)
    cancelled = t + _secs(_u(rng, n, 0.05, 0.8) * DAY)
    ov = concat(
        [
            versions(np.ones(n, bool), first_status, paid_at, first_upd, 0),
            versions(cancel_after_pay, CANCELLED, paid_at, cancelled, 1),
            versions(normal, SHIPPED, paid_at, shipped, 1),
            versions(normal, DELIVERED, paid_at, delivered, 2),
            versions(normal, COMPLETED, paid_at, completed, 3),
        ]
    )
    nv = nrows(ov)
    ov["style"] = _ts_style(rng, nv)
    ov["ms"] = np.where(rng.random(nv) < 0.03, rng.integers(0, 1000, nv), -1).astype(np.int16)
    ov["ftag"] = np.zeros(nv, dtype=np.int8)
    ov["land"] = business_day(ov["upd"])

    # ---- pre-purchase touches (they decide attribution) ------------------------------------------
    ev: list[Table] = []
    u = rng.random(n)
    lag = np.where(
        u < 0.5,
        5 + rng.exponential(1200.0, n),
        np.where(u < 0.85, _u(rng, n, HOUR, DAY), _u(rng, n, DAY, 7 * DAY)),
    )
    edge = rng.random(n)
    lag = np.where(edge < 0.015, 0.0, np.where(edge < 0.03, 7.0 * DAY, np.minimum(lag, 7.0 * DAY)))
    click_t = t - _secs(lag)
    attributed = target < 2
    last_pool = np.where(is_ad, AD, ORGANIC)
    idx = np.nonzero(attributed)[0]
    last = _events(rng, click_t[idx], user[idx], sku[idx], last_pool[idx], CLICK, camp[idx], price[idx])

    # an ad click and an organic click at the identical second: the tie goes to ad (SPEC 4), although
    # the organic click gets the smaller event_id
    tie = is_ad & (rng.random(n) < 0.02)
    tie_rows = np.isin(idx, np.nonzero(tie)[0])
    last["rank"][tie_rows] = np.maximum(last["rank"][tie_rows], 2)
    last["nolate"][tie_rows] = True
    ti = np.nonzero(tie)[0]
    tie_ev = _events(rng, click_t[ti], user[ti], sku[ti], ORGANIC, CLICK, -1, price[ti])
    tie_ev["rank"] = last["rank"][tie_rows] - 1
    tie_ev["nolate"][:] = True
    # two ad clicks of different campaigns at the identical second: the smaller event_id decides
    multi = is_ad & (w.prod_camp_count[sku] >= 2) & (rng.random(n) < 0.01) & ~tie
    mi = np.nonzero(multi)[0]
    cnt = w.prod_camp_count[sku[mi]]
    a = (rng.random(len(mi)) * cnt).astype(np.int64)
    b = (a + 1 + (rng.random(len(mi)) * (cnt - 1)).astype(np.int64)) % cnt
    last_rows = np.isin(idx, mi)
    last["camp"][last_rows] = w.prod_camp[w.prod_camp_start[sku[mi]] + a]
    last["nolate"][last_rows] = True
    multi_ev = _events(
        rng, click_t[mi], user[mi], sku[mi], AD, CLICK, w.prod_camp[w.prod_camp_start[sku[mi]] + b], price[mi]
    )
    multi_ev["nolate"][:] = True
    ev += [_with_impressions(rng, last), tie_ev, multi_ev]

    # earlier click from the other pool (both pools touched; the later one wins)
    other = attributed & (rng.random(n) < 0.25)
    live_camp = w.random_live_campaign(sku, rng.random(n))
    other_pool = np.where(is_ad, ORGANIC, AD)
    other &= (other_pool == ORGANIC) | (live_camp >= 0)
    oi = np.nonzero(other)[0]
    other_t = click_t[oi] - rng.integers(60, 3 * DAY, len(oi))
    other_camp = np.where(other_pool[oi] == AD, live_camp[oi], -1)
    ev.append(
        _with_impressions(
            rng, _events(rng, other_t, user[oi], sku[oi], other_pool[oi], CLICK, other_camp, price[oi])
        )
    )

    # direct orders: sometimes an old click just outside the 7-day window, or impressions only
    direct = target == 2
    old = direct & (rng.random(n) < 0.15)
    di = np.nonzero(old)[0]
    old_lag = np.where(rng.random(len(di)) < 0.1, 7 * DAY + 1, rng.integers(7 * DAY + 1, 10 * DAY, len(di)))
    old_pool = np.where((live_camp[di] >= 0) & (rng.random(len(di)) < 0.4), AD, ORGANIC)
    ev.append(
        _with_impressions(
            rng,
            _events(
                rng,
                t[di] - old_lag,
                user[di],
                sku[di],
                old_pool,
                CLICK,
                np.where(old_pool == AD, live_camp[di], -1),
                price[di],
            ),
        )
    )
    imp_only = direct & ~old & (rng.random(n) < 0.12)
    ii = np.nonzero(imp_only)[0]
    imp_pool = np.where((live_camp[ii] >= 0) & (rng.random(len(ii)) < 0.5), AD, ORGANIC)
    ev.append(
        _events(
            rng,
            t[ii] - rng.integers(60, 3 * DAY, len(ii)),
            user[ii],
            sku[ii],
            imp_pool,
            IMPRESSION,
            np.where(imp_pool == AD, live_camp[ii], -1),
            price[ii],
        )
    )

    # ---- lower-price re-exposure after paying ---------------------------------------------------
    ad_camp = w.cheaper_promoted(sku, rng.random(n))
    ad_sku = np.where(ad_camp >= 0, w.camp_product[np.maximum(ad_camp, 0)], sku)
    discount = np.floor(price * _u(rng, n, 0.75, 0.95) / 10.0).astype(np.int64) * 10
    discount = np.where((discount >= price) | (discount <= 0), price - 1, discount)
    ad_price = np.where(ad_camp >= 0, w.sku_price[ad_sku], discount)
    ad_camp = np.where(ad_camp >= 0, ad_camp, live_camp)  # else: the same SKU, discounted, via its campaign
    # The ad pool retargets: buyers it can reach (a campaign shows this SPU cheaper, or this SKU with a
    # discount) are re-exposed more often (P_REEXPOSED overall). Pools there: 50% ad, 15% organic,
    # 35% both; elsewhere organic only.
    ad_ok = ad_camp >= 0
    share_ok = max(float(ad_ok[normal].mean()) if normal.any() else 0.0, 1e-9)
    p_ok = min(0.6, 1.4 * P_REEXPOSED)
    p_other = max(0.0, (P_REEXPOSED - share_ok * p_ok) / max(1e-9, 1.0 - share_ok))
    reexp = normal & (rng.random(n) < np.where(ad_ok, p_ok, p_other))
    pc_u = rng.random(n)
    want_ad = reexp & ad_ok & ((pc_u < 0.50) | (pc_u >= 0.65))
    want_org = reexp & (~want_ad | (pc_u >= 0.65))
    org_sku = w.cheaper_sku(sku, rng.random(n))
    org_price = np.where(org_sku >= 0, w.sku_price[np.maximum(org_sku, 0)], discount)
    org_sku = np.where(org_sku >= 0, org_sku, sku)

    returned = normal & (rng.random(n) < np.where(reexp, P_RETURN_REEXPOSED, P_RETURN_BASE))
    # slots: two possible exposures per pool. "Shown the same product cheaper right after the
    # purchase": mostly within hours, rarely later than ~2 days (capped at 3 days, well inside the
    # 7-day window of SPEC 9), and always before any return request.
    re_tabs = []
    last_exposure = np.full(n, -1, dtype=np.int64)
    for want, pool, e_sku, e_price, e_camp in (
        (want_ad, AD, ad_sku, ad_price, ad_camp),
        (want_org, ORGANIC, org_sku, org_price, np.full(n, -1, dtype=np.int64)),
    ):
        for slot in range(2):
            on = want & ((slot == 0) | (rng.random(n) < 0.3))
            et = t + np.minimum(_secs(60 + rng.exponential(REEXPOSURE_MEAN_LAG, n)), 3 * DAY)
            etype = np.where(rng.random(n) < 0.3, CLICK, IMPRESSION)
            k = np.nonzero(on)[0]
            re_tabs.append(_events(rng, et[k], user[k], e_sku[k], pool, etype[k], e_camp[k], e_price[k]))
            last_exposure = np.where(on, np.maximum(last_exposure, et), last_exposure)
    ev += re_tabs
    traffic = concat(ev)

    # ---- returns --------------------------------------------------------------------------------
    pay = amount - subsidy
    r_first = np.where(
        reexp,
        # the buyer asks for the return soon after seeing it cheaper: within a day or so
        last_exposure + np.minimum(_secs(HOUR // 2 + rng.exponential(REQUEST_MEAN_LAG, n)), 2 * DAY),
        t + DAY + _secs(19 * DAY * rng.random(n) ** 1.6),
    )
    slow = rng.random(n) < P_SLOW_REFUND
    r_first = np.where(slow, np.maximum(r_first, t + rng.integers(15 * DAY, 20 * DAY, n)), r_first)
    multi_ret = returned & (rng.random(n) < P_MULTI_RETURN) & (pay >= 2)
    partial = rng.random(n) < 0.3
    amt1 = np.where(partial, np.round(pay * _u(rng, n, 0.2, 0.9)), pay).astype(np.int64)
    amt1 = np.where(multi_ret, np.round(pay * _u(rng, n, 0.3, 0.6)), amt1).astype(np.int64)
    amt1 = np.clip(amt1, 1, pay)
    amt2 = np.clip(np.floor((pay - amt1) * _u(rng, n, 0.5, 1.0)).astype(np.int64), 1, None)
    reason_p = cdf([0.05, 0.25, 0.20, 0.10, 0.10, 0.20, 0.10])
    reason_re = cdf([0.75, 0.06, 0.05, 0.03, 0.03, 0.05, 0.03])

    def return_rows(mask, k, requested, amount_) -> Table:
        i = np.nonzero(mask)[0]
        m = len(i)
        reason = np.where(reexp[i], sample_cdf(reason_re, rng.random(m)), sample_cdf(reason_p, rng.random(m)))
        return {
            "rkey": okey[i] * 10 + k,
            "okey": okey[i],
            "rtype": (rng.random(m) < 0.65).astype(np.int8),  # 1 = return_and_refund
            "reason": reason.astype(np.int8),
            "requested": requested[i],
            "amount": amount_[i],
            "slow": slow[i],
        }

    r2_time = r_first + rng.integers(DAY // 2, 5 * DAY, n)
    rets = concat([return_rows(returned, 1, r_first, amt1), return_rows(multi_ret, 2, r2_time, amt2)])
    rv = _return_versions(rng, rets)

    stats = {
        "orders": n,
        "paid_orders": int((~unpaid).sum()),
        "unpaid_cancelled": int(unpaid.sum()),
        "cancelled_after_payment": int(cancel_after_pay.sum()),
        "intended_last_click_ad": int(((target == 0) & ~unpaid).sum()),
        "intended_last_click_organic": int(((target == 1) & ~unpaid).sum()),
        "intended_direct": int(((target == 2) & ~unpaid).sum()),
        "reexposed_orders": int(reexp.sum()),
        "returned_orders": int(returned.sum()),
        "returned_reexposed_orders": int((returned & reexp).sum()),
        "returns": nrows(rets),
    }
    return {
        "orders": ov,
        "returns": rv,
        "traffic": traffic,
        "stats": stats,
        "order_paid": paid_at,
        "order_first_return": np.where(returned, r_first, -1),
        "order_ad": normal & is_ad & ~reexp,  # candidates for the fast return timelines (faults mode)
    }


def _return_versions(rng, rets: Table) -> Table:
    """Every version of every return: requested -> approved -> refunded (or rejected / cancelled),
    and a few refunds reversed later (refunded -> cancelled)."""
    m = nrows(rets)
    req = rets["requested"]
    u = rng.random(m)
    refunded_path = u < 0.85
    rejected = (u >= 0.85) & (u < 0.93)
    cancelled = u >= 0.93
    approved_t = req + rng.integers(HOUR, 2 * DAY, m)
    refund_delay = np.where(rets["slow"], rng.integers(11 * DAY, 16 * DAY, m), rng.integers(HOUR, 3 * DAY, m))
    refunded_t = approved_t + refund_delay
    rejected_t = req + rng.integers(2 * HOUR, 3 * DAY, m)
    cancelled_t = req + rng.integers(HOUR, 4 * DAY, m)
    reversed_ = refunded_path & (rng.random(m) < P_REVERSAL)
    reversal_t = refunded_t + rng.integers(DAY, 5 * DAY, m)
    none = np.full(m, -1, dtype=np.int64)
    base = {k: rets[k] for k in ("rkey", "okey", "rtype", "reason", "requested", "amount")}

    def rows(mask, status, upd, refunded, ver) -> Table:
        i = np.nonzero(mask)[0]
        tab = {k: v[i] for k, v in base.items()}
        tab["status"] = np.full(len(i), status, dtype=np.int8)
        tab["upd"] = upd[i]
        tab["refunded"] = refunded[i]
        tab["ver"] = np.full(len(i), ver, dtype=np.int8)
        return tab

    out = concat(
        [
            rows(np.ones(m, bool), R_REQUESTED, req, none, 0),
            rows(refunded_path, R_APPROVED, approved_t, none, 1),
            rows(refunded_path, R_REFUNDED, refunded_t, refunded_t, 2),
            rows(reversed_, R_CANCELLED, reversal_t, none, 3),
            rows(rejected, R_REJECTED, rejected_t, none, 1),
            rows(cancelled, R_CANCELLED, cancelled_t, none, 1),
        ]
    )
    k = nrows(out)
    if k == 0:
        return {}
    out["style"] = _ts_style(rng, k)
    out["ftag"] = np.zeros(k, dtype=np.int8)
    out["land"] = business_day(out["upd"])
    return out


def cohort_faults(frng: np.random.Generator, cohort: dict, day: int, d_start: int, d_end: int) -> None:
    """Landing-time faults that are accepted records (in place): late orders, out-of-order and
    re-sent versions, returns landing before their order, late traffic events."""
    ov, rv, tr = cohort["orders"], cohort["returns"], cohort["traffic"]
    n = len(cohort["order_paid"])
    paid = cohort["order_paid"]
    first_ret = cohort["order_first_return"]
    okeys = day * ORDER_SEQ + np.arange(n)
    used = np.zeros(n, dtype=bool)

    def delay_order(sel: np.ndarray, new_land: np.ndarray, tag_first: int | None) -> None:
        """Versions of the orders ``sel`` (order indexes) landing before ``new_land`` land then."""
        target = np.full(n, -1, dtype=np.int64)
        target[sel] = new_land
        row_t = target[ov["okey"] - day * ORDER_SEQ]
        move = (row_t >= 0) & (ov["land"] < row_t)
        ov["land"] = np.where(move, row_t, ov["land"])
        if tag_first is not None:
            first = (row_t >= 0) & (ov["ver"] == 0)
            ov["ftag"] = np.where(first, tag_first, ov["ftag"])
        used[sel] = True

    # returns that land 1-2 days before their order's first version
    r_day = business_day(np.where(first_ret >= 0, first_ret, 0))
    cand = np.nonzero((first_ret >= 0) & (r_day - day <= 3) & (r_day + 2 <= d_end))[0]
    k = max(1, int(round(0.03 * len(cand)))) if len(cand) else 0
    sel = np.sort(frng.choice(cand, k, replace=False)) if k else np.zeros(0, np.int64)
    delay_order(sel, r_day[sel] + frng.integers(1, 3, len(sel)), None)
    if len(sel) and rv:
        tag = np.isin(rv["okey"], okeys[sel]) & (rv["ver"] == 0) & (rv["rkey"] % 10 == 1)
        rv["ftag"] = np.where(tag, FT_RETURN_BEFORE_ORDER, rv["ftag"])

    # late orders: the order of day D lands in dt=D+2 (not one whose return would land before it)
    no_early_return = (first_ret < 0) | (r_day >= day + 2)
    cand = np.nonzero((paid >= 0) & ~used & no_early_return)[0] if day + 2 <= d_end else np.zeros(0, np.int64)
    k = max(1, int(round(0.004 * n))) if len(cand) else 0
    sel = np.sort(frng.choice(cand, min(k, len(cand)), replace=False)) if k else np.zeros(0, np.int64)
    delay_order(sel, np.full(len(sel), day + 2), FT_LATE)

    # an older version (shipped) landing after the newer one (delivered)
    idx = {}
    for ver in (1, 2):
        rows = np.nonzero((ov["ver"] == ver) & (ov["status"] != CANCELLED))[0]
        idx[ver] = rows
    if len(idx[1]) and len(idx[2]):
        ship = idx[1][np.argsort(ov["okey"][idx[1]], kind="stable")]
        ship = ship[np.isin(ov["okey"][ship], ov["okey"][idx[2]])]
        deliv = idx[2][np.argsort(ov["okey"][idx[2]], kind="stable")]
        ok = (
            (~used[ov["okey"][ship] - day * ORDER_SEQ])
            & (ov["land"][deliv] + 1 <= d_end)
            & (ov["land"][ship] <= ov["land"][deliv])
        )
        cand = np.nonzero(ok)[0]
        k = min(len(cand), max(1, int(round(0.003 * n)))) if len(cand) else 0
        pick = frng.choice(cand, k, replace=False) if k else np.zeros(0, np.int64)
        ov["land"][ship[pick]] = ov["land"][deliv[pick]] + 1
        ov["ftag"][ship[pick]] = FT_OUT_OF_ORDER
        used[ov["okey"][ship[pick]] - day * ORDER_SEQ] = True

    # the same state re-sent with a later updated_at (a new, accepted version)
    cand = np.nonzero((ov["ver"] == 0) & (ov["ftag"] == 0) & (ov["land"] <= d_end))[0]
    cand = cand[~used[ov["okey"][cand] - day * ORDER_SEQ]]
    k = min(len(cand), max(1, int(round(0.003 * n)))) if len(cand) else 0
    pick = np.sort(frng.choice(cand, k, replace=False)) if k else np.zeros(0, np.int64)
    extra = take(ov, pick)
    extra["upd"] = extra["upd"] + frng.integers(1, 600, k)
    extra["ms"] = np.full(k, -1, dtype=np.int16)
    extra["ver"] = np.full(k, 9, dtype=np.int8)
    extra["land"] = np.maximum(extra["land"], business_day(extra["upd"]))
    extra["ftag"] = np.full(k, FT_RESENT, dtype=np.int8)
    cohort["orders"] = concat([ov, extra])

    # late traffic: touch events of day D landing in dt=D+2
    if tr:
        ev_day = business_day(tr["time"])
        cand = np.nonzero(
            ~tr["nolate"] & (ev_day >= d_start) & (ev_day + 2 <= d_end) & (tr["land"] == ev_day)
        )[0]
        k = min(len(cand), max(1, int(round(0.003 * len(tr["time"]))))) if len(cand) else 0
        pick = frng.choice(cand, k, replace=False) if k else np.zeros(0, np.int64)
        tr["land"][pick] = ev_day[pick] + 2
        tr["ftag"][pick] = FT_LATE

    # fast return timelines (refunds, a reversal, a capped second return) inside short ranges
    fast_returns(frng, cohort, day, used)


FAST_ROLES = ("reversed", "late", "late_record", "capped")  # one order each per cohort (faults mode)


def fast_returns(frng: np.random.Generator, cohort: dict, day: int, used: np.ndarray) -> None:
    """Faults mode: a few paid, ad-targeted, not re-exposed orders of the cohort get a fast return
    timeline (in place), so that even a range of a few days holds the refund ledger's hard cases
    (SPEC 6). One order per role of ``FAST_ROLES``:

    - ``reversed``: returned and refunded within hours of paying, the refund reversed (refunded ->
      cancelled) in a later landing folder;
    - ``late``: refunded 1-2 business days after paying, after the order's own folder was run;
    - ``late_record``: refunded the next day, and that version lands one day late (``late_return``);
    - ``capped``: a partial refund, then a second return whose refund takes the order's refunds past
      its pay amount, so that the per-order cap on ad-fee refunds binds.

    An order without a return gets one (so ``returned_orders`` and ``returns`` of the cohort stats
    are updated); the order's earlier return versions are replaced. Counts go to the cohort stats.
    """
    rv, ov = cohort["returns"], cohort["orders"]
    paid = cohort["order_paid"]
    returned = cohort["order_first_return"] >= 0
    ok = cohort["order_ad"] & ~used
    cand = np.concatenate(
        [frng.permutation(np.nonzero(ok & returned)[0]), frng.permutation(np.nonzero(ok & ~returned)[0])]
    )
    pick = cand[: len(FAST_ROLES)]
    if len(pick) == 0:
        return
    first = {}
    for i in np.nonzero(ov["ver"] == 0)[0]:
        first[int(ov["okey"][i])] = int(i)
    H = HOUR
    cols = ("rkey", "okey", "rtype", "reason", "requested", "amount", "status", "upd", "refunded", "ver")
    cols += ("ftag", "land")
    new: dict[str, list] = {c: [] for c in cols}

    def put(rkey, okey, reason, requested, amount, status, upd, refunded, ver, late=False) -> None:
        values = dict(rkey=rkey, okey=okey, rtype=1, reason=reason, requested=requested, amount=amount)
        values.update(status=status, upd=upd, refunded=refunded, ver=ver, ftag=FT_LATE_RETURN * late)
        values["land"] = int(business_day(upd)) + int(late)
        for c in cols:
            new[c].append(int(values[c]))

    def refunded_version(rkey, okey, reason, requested, amount, not_before, late=False) -> int:
        approved = requested + int(frng.integers(H // 4, 3 * H))
        refunded = max(approved + int(frng.integers(H // 4, 4 * H)), not_before)
        put(rkey, okey, reason, requested, amount, R_REQUESTED, requested, -1, 0)
        put(rkey, okey, reason, requested, amount, R_APPROVED, approved, -1, 1)
        put(rkey, okey, reason, requested, amount, R_REFUNDED, refunded, refunded, 2, late)
        return refunded

    counts = dict.fromkeys(FAST_ROLES, 0)
    for role, i in zip(FAST_ROLES, pick, strict=False):
        i = int(i)
        okey = day * ORDER_SEQ + i
        row = first[okey]
        pay = int(ov["qty"][row]) * int(ov["price"][row]) - int(ov["subsidy"][row])
        t = int(paid[i])
        reason = int(frng.choice([1, 2, 3, 4, 5]))  # not found_cheaper: the order was not re-exposed
        requested = t + int(frng.integers(H // 2, 4 * H))
        rkey = okey * 10 + 1
        if role == "reversed":
            refunded = refunded_version(rkey, okey, reason, requested, pay, 0)
            reversal = max(
                refunded + int(frng.integers(2 * H, 20 * H)),
                int(day_start_utc(int(business_day(refunded)) + 1)) + int(frng.integers(H, 10 * H)),
            )
            put(rkey, okey, reason, requested, pay, R_CANCELLED, reversal, -1, 3)
        elif role in ("late", "late_record"):
            lag = 1 if role == "late_record" else int(frng.integers(1, 3))
            not_before = int(day_start_utc(day + lag)) + int(frng.integers(H, 14 * H))
            amount = pay if frng.random() < 0.5 else max(1, int(round(pay * frng.uniform(0.3, 0.9))))
            refunded_version(rkey, okey, reason, requested, amount, not_before, late=role == "late_record")
        else:  # capped
            a1 = min(pay, max(1, int(round(pay * frng.uniform(0.4, 0.7)))))
            a2 = max(1, pay - a1 + int(round(pay * frng.uniform(0.15, 0.4))))
            refunded_version(rkey, okey, reason, requested, a1, 0)
            requested2 = requested + int(frng.integers(H, 10 * H))
            refunded_version(rkey + 1, okey, reason, requested2, a2, 0)
        counts[role] += 1
        cohort["order_first_return"][i] = requested

    k = len(new["rkey"])
    add = {c: np.asarray(new[c], dtype=rv[c].dtype if rv else np.int64) for c in cols}
    add["style"] = _ts_style(frng, k)
    if rv:
        keep = ~np.isin(rv["okey"], day * ORDER_SEQ + pick)
        old_returns = len(np.unique(rv["rkey"][~keep]))
        cohort["returns"] = concat([take(rv, np.nonzero(keep)[0]), {c: add[c] for c in rv}])
    else:
        old_returns = 0
        cohort["returns"] = add
    stats = cohort["stats"]
    stats["returned_orders"] += int((~returned[pick]).sum())
    stats["returns"] += len(np.unique(add["rkey"])) - old_returns
    stats.update({f"fast_{role}": counts[role] for role in FAST_ROLES})


def noise_events(world: World, rng: np.random.Generator, day: int, hours: tuple[int, int], n: int) -> Table:
    """Background impressions and clicks of random users on business ``day`` within ``hours``."""
    w = world
    h0, h1 = hours
    hw = HOUR_WEIGHTS[h0:h1]
    hour = h0 + sample_cdf(cdf(hw), rng.random(n))
    time = day_start_utc(day) + hour * HOUR + rng.integers(0, HOUR, n)
    pool = np.where(rng.random(n) < 0.35, AD, ORGANIC).astype(np.int8)
    camp = sample_cdf(w.camp_noise_cdf, rng.random(n))
    sku = rng.integers(0, w.n_sku, n)
    sku = np.where(pool == AD, w.camp_product[camp], sku)
    camp = np.where(pool == AD, camp, -1)
    user = rng.integers(0, w.n_users, n)
    etype = (rng.random(n) < np.where(pool == AD, 0.08, 0.05)).astype(np.int8)
    tab = _events(rng, time, user, sku, pool, etype, camp, w.sku_price[sku])
    return tab


def ad_counts(tab: Table, n_camp: int) -> dict[int, np.ndarray]:
    """Per business day: impressions and clicks per (campaign, hour) of the ad events in ``tab``,
    as an array of shape (2, n_camp * 24)."""
    out: dict[int, np.ndarray] = {}
    if not tab:
        return out
    ad = tab["pool"] == AD
    if not ad.any():
        return out
    time = tab["time"][ad]
    days = business_day(time)
    key = tab["camp"][ad] * 24 + business_hour(time)
    etype = tab["etype"][ad]
    for d in np.unique(days):
        m = days == d
        arr = np.zeros((2, n_camp * 24), dtype=np.int32)
        arr[0] = np.bincount(key[m & (etype == IMPRESSION)], minlength=n_camp * 24)
        arr[1] = np.bincount(key[m & (etype == CLICK)], minlength=n_camp * 24)
        out[int(d)] = arr
    return out
