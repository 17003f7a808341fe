"""Domain rules: statuses, poll decisions, schedules, events, ids, errors.

Pure Python: nothing here imports SQLAlchemy, an HTTP client, Redis or Celery.
"""
