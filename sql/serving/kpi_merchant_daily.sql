-- kpi_merchant_daily (SPEC §8): one row per (business day `dt`, `merchant_id`), the row of the
-- latest snapshot `as_of`. Orders by the order's merchant, spend by the campaign's advertiser_id,
-- ad-fee refunds by the ledger row's merchant. Source: gold/kpi_merchant_daily.
CREATE OR REPLACE TABLE kpi_merchant_daily AS
SELECT
    CAST(dt AS DATE)                          AS dt,
    CAST(merchant_id AS VARCHAR)              AS merchant_id,
    CAST(orders AS BIGINT)                    AS orders,
    CAST(buyers AS BIGINT)                    AS buyers,
    CAST(payment_gmv AS DECIMAL(18, 2))       AS payment_gmv,
    CAST(gmv_ad AS DECIMAL(18, 2))            AS gmv_ad,
    CAST(gmv_organic AS DECIMAL(18, 2))       AS gmv_organic,
    CAST(gmv_direct AS DECIMAL(18, 2))        AS gmv_direct,
    CAST(platform_subsidy AS DECIMAL(18, 2))  AS platform_subsidy,
    CAST(cross_pool_subsidy AS DECIMAL(18, 2)) AS cross_pool_subsidy,
    CAST(ad_spend AS DECIMAL(18, 2))          AS ad_spend,
    CAST(unattributed_spend AS DECIMAL(18, 2)) AS unattributed_spend,
    CAST(roi AS DECIMAL(18, 6))               AS roi,
    CAST(returned_orders AS BIGINT)           AS returned_orders,
    CAST(return_rate AS DECIMAL(18, 6))       AS return_rate,
    CAST(refund_amount AS DECIMAL(18, 2))     AS refund_amount,
    CAST(settled_gmv AS DECIMAL(18, 2))       AS settled_gmv,
    CAST(settlement_rate AS DECIMAL(18, 6))   AS settlement_rate,
    CAST(settlement_final AS BOOLEAN)         AS settlement_final,
    CAST(ad_fee_refund AS DECIMAL(18, 2))     AS ad_fee_refund,
    CAST(net_roi AS DECIMAL(18, 6))           AS net_roi,
    CAST(as_of AS DATE)                       AS as_of
FROM gold_kpi_merchant_daily
QUALIFY row_number() OVER (PARTITION BY dt, merchant_id ORDER BY as_of DESC) = 1
ORDER BY dt, merchant_id;
