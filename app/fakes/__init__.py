"""Local fake servers for the outside world: an OpenAI-compatible model, Slack, Shopify,
WooCommerce and a carrier. Each is a small HTTP server on a free 127.0.0.1 port, started by
a test (or ``make demo``), that records what it receives and answers like the real API in
what our adapters rely on: pagination cursors, 429 with ``Retry-After``, error bodies."""

from app.fakes.base import FakeServer, Received
from app.fakes.carrier import FakeCarrier
from app.fakes.model import FakeModel
from app.fakes.shopify import FakeShopify
from app.fakes.slack import FakeSlack
from app.fakes.woocommerce import FakeWooCommerce

__all__ = ["FakeCarrier", "FakeModel", "FakeServer", "FakeShopify", "FakeSlack",
           "FakeWooCommerce", "Received"]
