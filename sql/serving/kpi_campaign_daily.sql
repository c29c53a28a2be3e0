-- kpi_campaign_daily (SPEC §8): one row per (business day `dt`, `campaign_id`), the row of the
-- latest snapshot `as_of`. merchant_id is the campaign's advertiser_id. Source: gold/kpi_campaign_daily.
CREATE OR REPLACE TABLE kpi_campaign_daily AS
SELECT
    CAST(dt AS DATE)                          AS dt,
    CAST(campaign_id AS VARCHAR)              AS campaign_id,
    CAST(merchant_id AS VARCHAR)              AS merchant_id,
    CAST(impressions AS BIGINT)               AS impressions,
    CAST(clicks AS BIGINT)                    AS clicks,
    CAST(ad_spend AS DECIMAL(18, 2))          AS ad_spend,
    CAST(attributed_orders AS BIGINT)         AS attributed_orders,
    CAST(gmv_ad AS DECIMAL(18, 2))            AS gmv_ad,
    CAST(returned_orders AS BIGINT)           AS returned_orders,
    CAST(allocated_ad_fee AS DECIMAL(18, 2))  AS allocated_ad_fee,
    CAST(roi AS DECIMAL(18, 6))               AS roi,
    CAST(return_rate AS DECIMAL(18, 6))       AS return_rate,
    CAST(ad_fee_refund AS DECIMAL(18, 2))     AS ad_fee_refund,
    CAST(as_of AS DATE)                       AS as_of
FROM gold_kpi_campaign_daily
QUALIFY row_number() OVER (PARTITION BY dt, campaign_id ORDER BY as_of DESC) = 1
ORDER BY dt, campaign_id;
