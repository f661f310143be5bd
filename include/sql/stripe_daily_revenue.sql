-- Daily revenue from the raw Stripe charges Airbyte synced: one row per day and currency.
-- Portable SQL: runs unchanged on SQLite (the embedded warehouse) and PostgreSQL.
DROP TABLE IF EXISTS analytics_stripe_daily_revenue;

CREATE TABLE analytics_stripe_daily_revenue AS
SELECT
    SUBSTR(CAST(created AS TEXT), 1, 10) AS revenue_date,
    currency,
    COUNT(*) AS charges,
    SUM(amount) AS revenue_cents
FROM stripe_charges
WHERE status = 'succeeded'
GROUP BY SUBSTR(CAST(created AS TEXT), 1, 10), currency;

SELECT COUNT(*) AS days_and_currencies, COALESCE(SUM(revenue_cents), 0) AS revenue_cents
FROM analytics_stripe_daily_revenue;
