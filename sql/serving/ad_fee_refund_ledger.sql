-- ad_fee_refund_ledger (SPEC §6): every ledger entry ever settled (refunds and reversals); rows
-- never change once settled. Timestamps are instants (TIMESTAMPTZ); run
-- `SET TimeZone = 'Asia/Shanghai'` to see them in business time. Source: finance/ad_fee_refund_ledger.
CREATE OR REPLACE TABLE ad_fee_refund_ledger AS
SELECT
    CAST(settlement_date AS DATE)             AS settlement_date,
    CAST(entry_type AS VARCHAR)               AS entry_type,
    CAST(merchant_id AS VARCHAR)              AS merchant_id,
    CAST(campaign_id AS VARCHAR)              AS campaign_id,
    CAST(order_id AS VARCHAR)                 AS order_id,
    CAST(return_id AS VARCHAR)                AS return_id,
    CAST(paid_at AS TIMESTAMPTZ)              AS paid_at,
    CAST(refunded_at AS TIMESTAMPTZ)          AS refunded_at,
    CAST(order_amount AS DECIMAL(18, 2))      AS order_amount,
    CAST(pay_amount AS DECIMAL(18, 2))        AS pay_amount,
    CAST(refund_amount AS DECIMAL(18, 2))     AS refund_amount,
    CAST(allocated_ad_fee AS DECIMAL(18, 2))  AS allocated_ad_fee,
    CAST(ad_fee_refund AS DECIMAL(18, 2))     AS ad_fee_refund
FROM finance_ad_fee_refund_ledger
ORDER BY settlement_date, merchant_id, order_id, return_id, entry_type;
