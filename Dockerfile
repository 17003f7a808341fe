# kyc-poller: one image for the worker, beat, the migration job and the fake providers
# (docker-compose.yml picks the command per service).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
# psycopg[binary] ships its own libpq, so the slim image needs no build tools.
RUN pip install . && rm -rf build ./*.egg-info

# Celery warns against running as root, and nothing here needs it. /app stays root-owned:
# beat writes its schedule to /tmp (see docker-compose.yml).
RUN useradd --system --create-home --uid 10001 --user-group kyc
USER kyc

CMD ["celery", "-A", "tasks.app", "worker", "--loglevel=INFO"]
