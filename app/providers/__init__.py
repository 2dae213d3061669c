"""Adapters for the outside world: each module speaks one provider's protocol (SMTP, SMS and
WhatsApp HTTP APIs, OpenAI-compatible models, Slack, Shopify, WooCommerce, carriers) behind
an interface of its family, never touches the database, and classifies its failures as
retryable (timeouts, connection errors, 5xx, 429) or permanent (other 4xx). ``http`` is the
one way they call a provider over httpx; the local fakes the tests and the demo run live in
``fakes`` (messaging) and ``app.fakes`` (the other families)."""
