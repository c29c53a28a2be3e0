"""The static "world" of the generator: merchants, SPUs and SKUs, users, advertisers and campaigns.

Sized from ``orders_per_day`` and drawn from ``seed`` only (never from the date range), so a given
merchant, product or campaign id means the same thing in every run with the same arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STREAM_WORLD = 1
PRICE_KEY = 1 << 40  # spu * PRICE_KEY + price_in_fen: sortable (SPU, price) key

# Widths of the zero-padded numeric part of each id.
ID_WIDTH = {"merchant": 6, "spu": 7, "product": 8, "user": 9, "campaign": 6}
ID_PREFIX = {"merchant": "m", "spu": "spu", "product": "p", "user": "u", "campaign": "c"}

# Share of orders / traffic per business hour (Asia/Shanghai), evening peak, quiet night.
HOUR_WEIGHTS = np.array(
    [
        3.0,
        2.0,
        1.2,
        0.8,
        0.6,
        0.6,
        0.8,
        1.5,
        2.5,
        3.5,
        4.0,
        4.0,
        4.2,
        4.0,
        3.8,
        3.8,
        4.0,
        4.2,
        4.5,
        5.5,
        6.5,
        7.0,
        6.5,
        5.0,
    ]
)


def cdf(weights: np.ndarray) -> np.ndarray:
    c = np.cumsum(np.asarray(weights, dtype=np.float64))
    return c / c[-1]


def sample_cdf(c: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from a cumulative distribution with uniforms ``u``."""
    return np.minimum(np.searchsorted(c, u, side="right"), len(c) - 1).astype(np.int64)


@dataclass
class World:
    n_merchants: int
    n_users: int
    n_spu: int
    merchant_weight: np.ndarray
    # SKUs (product_id): index -> attributes
    sku_spu: np.ndarray
    sku_merchant: np.ndarray
    sku_price: np.ndarray  # fen
    sku_pop_cdf: np.ndarray  # purchase popularity
    # SKUs sorted by (spu, price), for "a cheaper SKU of the same SPU"
    spu_sorted_sku: np.ndarray
    spu_sorted_key: np.ndarray
    # campaigns
    camp_advertiser: np.ndarray
    camp_product: np.ndarray
    camp_cpc: np.ndarray  # fen per click
    camp_dud: np.ndarray  # never drives an order: spend without orders
    camp_order_cdf: np.ndarray  # over all campaigns, zero weight for duds
    camp_noise_cdf: np.ndarray
    # live (non-dud) campaigns grouped by product: prod_camp[prod_camp_start[p] : + prod_camp_count[p]]
    prod_camp: np.ndarray
    prod_camp_start: np.ndarray
    prod_camp_count: np.ndarray
    # live campaigns sorted by (spu, price) of their product
    promo_key: np.ndarray
    promo_camp: np.ndarray
    user_perm: np.ndarray

    @property
    def n_sku(self) -> int:
        return len(self.sku_spu)

    @property
    def n_campaigns(self) -> int:
        return len(self.camp_product)

    def random_live_campaign(self, sku: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A random live campaign promoting ``sku`` (-1 where it has none)."""
        cnt = self.prod_camp_count[sku]
        pos = self.prod_camp_start[sku] + np.minimum((u * cnt).astype(np.int64), np.maximum(cnt - 1, 0))
        out = np.full(len(sku), -1, dtype=np.int64)
        has = cnt > 0
        out[has] = self.prod_camp[pos[has]]
        return out

    def cheaper_sku(self, sku: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A random SKU of the same SPU with a strictly lower price (-1 where none)."""
        spu, price = self.sku_spu[sku], self.sku_price[sku]
        lo = np.searchsorted(self.spu_sorted_key, spu * PRICE_KEY, side="left")
        hi = np.searchsorted(self.spu_sorted_key, spu * PRICE_KEY + price, side="left")
        cnt = hi - lo
        out = np.full(len(sku), -1, dtype=np.int64)
        has = cnt > 0
        out[has] = self.spu_sorted_sku[lo[has] + (u[has] * cnt[has]).astype(np.int64)]
        return out

    def cheaper_promoted(self, sku: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A random live campaign whose product is a strictly cheaper SKU of the same SPU (-1: none)."""
        spu, price = self.sku_spu[sku], self.sku_price[sku]
        lo = np.searchsorted(self.promo_key, spu * PRICE_KEY, side="left")
        hi = np.searchsorted(self.promo_key, spu * PRICE_KEY + price, side="left")
        cnt = hi - lo
        out = np.full(len(sku), -1, dtype=np.int64)
        has = cnt > 0
        out[has] = self.promo_camp[lo[has] + (u[has] * cnt[has]).astype(np.int64)]
        return out


def build_world(orders_per_day: int, seed: int) -> World:
    rng = np.random.default_rng([seed, STREAM_WORLD])
    n_merch = max(20, orders_per_day // 20)
    n_users = max(100, 3 * orders_per_day)
    n_spu = max(500, orders_per_day // 4)

    # Merchants: Zipf-like sizes.
    merchant_weight = 1.0 / (rng.permutation(n_merch) + 1.0) ** 1.05

    # SPUs and their SKUs: one SPU sold by several merchants at different prices.
    per_spu = 1 + np.minimum(rng.poisson(1.8, n_spu), 7)
    sku_spu = np.repeat(np.arange(n_spu, dtype=np.int64), per_spu)
    n_sku = len(sku_spu)
    base_price = np.exp(rng.normal(np.log(60.0), 0.8, n_spu)).clip(3.0, 3000.0)
    spread = rng.uniform(0.75, 1.25, n_sku)  # +-25% around the SPU's base price
    sku_price = np.maximum(50, np.round(base_price[sku_spu] * spread * 10.0).astype(np.int64) * 10)
    sku_merchant = sample_cdf(cdf(merchant_weight), rng.random(n_sku))
    cover = rng.choice(n_sku, n_merch, replace=False)  # every merchant sells something
    sku_merchant[cover] = np.arange(n_merch)
    spu_pop = 1.0 / (rng.permutation(n_spu) + 1.0) ** 0.9
    sku_pop = (
        spu_pop[sku_spu]
        * np.sqrt(merchant_weight[sku_merchant])
        * rng.lognormal(0.0, 0.5, n_sku)
        * (sku_price / (base_price[sku_spu] * 100.0)) ** -2.0
    )
    order = np.lexsort((sku_price, sku_spu))
    spu_sorted_sku = order.astype(np.int64)
    spu_sorted_key = sku_spu[order] * PRICE_KEY + sku_price[order]

    # Advertisers (~40% of merchants) and their campaigns, each promoting one of its SKUs.
    is_adv = rng.random(n_merch) < 0.4
    is_adv[np.argsort(-merchant_weight)[:2]] = True
    advertisers = np.nonzero(is_adv)[0]
    camps_per = 1 + np.minimum(rng.poisson(1.8, len(advertisers)), 5)
    camp_adv = np.repeat(advertisers, camps_per).astype(np.int64)
    n_camp = len(camp_adv)
    by_merchant = np.argsort(sku_merchant, kind="stable")
    m_start = np.searchsorted(sku_merchant[by_merchant], np.arange(n_merch), side="left")
    m_count = np.bincount(sku_merchant, minlength=n_merch)
    c1 = by_merchant[m_start[camp_adv] + (rng.random(n_camp) * m_count[camp_adv]).astype(np.int64)]
    c2 = by_merchant[m_start[camp_adv] + (rng.random(n_camp) * m_count[camp_adv]).astype(np.int64)]
    camp_product = np.where(sku_pop[c1] >= sku_pop[c2], c1, c2).astype(np.int64)
    camp_dud = rng.random(n_camp) < 0.10
    if n_camp >= 5 and not camp_dud.any():
        camp_dud[rng.integers(0, n_camp)] = True
    if camp_dud.all():
        camp_dud[0] = False
    camp_cpc = np.exp(rng.normal(np.log(450.0), 0.5, n_camp)).round().astype(np.int64).clip(50, 3000)
    w_order = sku_pop[camp_product] * rng.lognormal(0.0, 0.3, n_camp) * (~camp_dud)
    w_noise = np.sqrt(merchant_weight[camp_adv]) * rng.lognormal(0.0, 0.5, n_camp)

    live = np.nonzero(~camp_dud)[0]
    live_sorted = live[np.argsort(camp_product[live], kind="stable")]
    prod_camp_start = np.searchsorted(camp_product[live_sorted], np.arange(n_sku), side="left")
    prod_camp_count = np.bincount(camp_product[live], minlength=n_sku)
    pkey = sku_spu[camp_product[live]] * PRICE_KEY + sku_price[camp_product[live]]
    porder = np.argsort(pkey, kind="stable")

    return World(
        n_merchants=n_merch,
        n_users=n_users,
        n_spu=n_spu,
        merchant_weight=merchant_weight,
        sku_spu=sku_spu,
        sku_merchant=sku_merchant,
        sku_price=sku_price,
        sku_pop_cdf=cdf(sku_pop),
        spu_sorted_sku=spu_sorted_sku,
        spu_sorted_key=spu_sorted_key,
        camp_advertiser=camp_adv,
        camp_product=camp_product,
        camp_cpc=camp_cpc,
        camp_dud=camp_dud,
        camp_order_cdf=cdf(w_order),
        camp_noise_cdf=cdf(w_noise),
        prod_camp=live_sorted.astype(np.int64),
        prod_camp_start=prod_camp_start.astype(np.int64),
        prod_camp_count=prod_camp_count.astype(np.int64),
        promo_key=pkey[porder],
        promo_camp=live[porder].astype(np.int64),
        user_perm=rng.permutation(n_users).astype(np.int64),
    )
