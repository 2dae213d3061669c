"""Operations on the job system: inspect, control and check it (``python -m app.ops``).

Each family is a module of plain functions taking an owner connection (``db.connect``), so
they serve the CLI, scripts and tests alike; all their SQL is in ``queries``.
"""
