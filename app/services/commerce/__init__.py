"""Commerce operations: stores (Shopify, WooCommerce) synced page by page, webhooks, and
shipments with a carrier. Business logic only; the actors live in ``app.actors.commerce``
and ``app.actors.shipping``."""
