"""Middleware that turns dramatiq actors into tenant-aware jobs."""
