# One image for every app service in compose.yaml (worker, scheduler, migrate).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/pgjobs

# All dependencies ship as wheels (psycopg binary builds), so no compiler is needed.
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install .

# Migrations run from the working directory: `alembic upgrade head`.
COPY alembic.ini ./
COPY migrations ./migrations

RUN useradd --system --create-home --uid 10001 pgjobs
USER pgjobs

CMD ["dramatiq", "app.actors", "--processes", "2", "--threads", "8"]
