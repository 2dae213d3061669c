"""Engines, sessions, the tenant context and the table models."""
