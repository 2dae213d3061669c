"""Outbound messaging: notifications over email, SMS and WhatsApp; scheduled messages and
reminders. Services here never import dramatiq; ``notify`` and ``scheduling`` are the API
application code calls (they enqueue), ``app.actors.notifications`` and
``app.actors.messages`` the thin actors."""
