# kyc-poller images. Two targets:
#   runtime (the default, last-but-one stage): the product only — worker, beat, migrations.
#   dev: runtime plus the devkit (fake providers, demo); docker-compose's fake providers use it.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only the product's sources: the devkit never reaches this image.
COPY pyproject.toml constraints.txt README.md alembic.ini celeryconfig.py ./
COPY worker ./worker
COPY tasks ./tasks
COPY models ./models
# psycopg[binary] ships its own libpq, so the slim image needs no build tools. The versions are
# constraints.txt's, the ones CI tested (scripts/bootstrap installs the same).
RUN pip install . --constraint constraints.txt && rm -rf build ./*.egg-info

# Celery warns against running as root, and nothing here needs it. /app stays root-owned:
# beat writes its schedule to /tmp (see docker-compose.yml).
RUN useradd --system --create-home --uid 10001 --user-group kyc
USER kyc

CMD ["celery", "-A", "tasks.app", "worker", "--loglevel=INFO"]

FROM runtime AS dev
USER root
COPY devkit ./devkit
RUN pip install ./devkit --constraint constraints.txt && rm -rf devkit/build devkit/*.egg-info
USER kyc

# `docker build .` builds the product image.
FROM runtime
