-- return_attribution_daily (SPEC §8, §9): one row per (business day `dt`, `attributed_pool`,
-- `reexposure`), the row of the latest snapshot `as_of`. reexposure: none | ad | organic | both.
-- Source: gold/return_attribution_daily.
CREATE OR REPLACE TABLE return_attribution_daily AS
SELECT
    CAST(dt AS DATE)                          AS dt,
    CAST(attributed_pool AS VARCHAR)          AS attributed_pool,
    CAST(reexposure AS VARCHAR)               AS reexposure,
    CAST(orders AS BIGINT)                    AS orders,
    CAST(returned_orders AS BIGINT)           AS returned_orders,
    CAST(return_rate AS DECIMAL(18, 6))       AS return_rate,
    CAST(refund_amount AS DECIMAL(18, 2))     AS refund_amount,
    CAST(found_cheaper_returns AS BIGINT)     AS found_cheaper_returns,
    CAST(as_of AS DATE)                       AS as_of
FROM gold_return_attribution_daily
QUALIFY row_number() OVER (PARTITION BY dt, attributed_pool, reexposure ORDER BY as_of DESC) = 1
ORDER BY dt, attributed_pool, reexposure;
