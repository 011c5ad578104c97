DROP INDEX IF EXISTS transactions_purchase_key;
