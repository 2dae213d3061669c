"""Adapters for the outside world: each module speaks one provider's protocol (SMTP, SMS and
WhatsApp HTTP APIs, models, Slack, commerce) behind an interface of its family, and never
touches the database; the local fakes the tests and the demo run live here too."""
