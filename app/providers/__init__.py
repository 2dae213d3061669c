"""Adapters for the outside world, over httpx: each classifies its failures as retryable
(timeouts, connection errors, 5xx, 429) or permanent (other 4xx), see ``errors``."""
