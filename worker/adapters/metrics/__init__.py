"""Prometheus metrics: what every poll worker, control worker and beat serves.

One module per job:
- `specs`: every exported metric's name, type, labels and help (the README table,
  dashboard and alerts are checked against `ALL_METRICS`);
- `counts`: the poll workers' counters and histograms, and the tasks' counts;
- `observer`: the poll engine's observer (`PrometheusObserver`);
- `fleet`: beat's fleet-wide gauges (`FleetCollector`: SQL and governor reads);
- `process`: prometheus_client's multiprocess mode under Celery's prefork pool;
- `server`: the `/metrics` HTTP endpoint;
- `service`: the HTTP service's own metrics (`kyc-poller serve`, its own registry; not in
  `ALL_METRICS`, which is what the workers and beat export and the dashboard shows).

Every process serves `/metrics` on `KYC_METRICS_PORT` (0: off).
"""

from worker.adapters.metrics.counts import (
    Instruments,
    count_refused_task,
    count_relayed,
    count_tracking,
    instruments,
)
from worker.adapters.metrics.fleet import DatabaseState, FleetCollector, FleetSnapshot
from worker.adapters.metrics.observer import PrometheusObserver, provider_change_time
from worker.adapters.metrics.process import (
    MULTIPROC_ENV,
    default_metrics_base,
    mark_process_dead,
    multiprocess_active,
    multiprocess_dir,
    prepare_multiprocess_dir,
    prepare_process_metrics,
)
from worker.adapters.metrics.server import (
    MetricsServer,
    exposition_registry,
    start_metrics_server,
)
from worker.adapters.metrics.service import SERVICE_METRICS
from worker.adapters.metrics.specs import (
    ALL_METRICS,
    DEFAULT_METRICS_PORT,
    FLEET_METRICS,
    OTHER,
    RELAY_AFTER_POLL,
    RELAY_BEAT,
    RELAY_DIRECT,
    WORKER_METRICS,
    MetricSpec,
    bounded_label,
    provider_label,
)

# Everything any kyc-poller process exports: the workers', beat's and the HTTP service's.
EXPORTED_METRICS = ALL_METRICS + SERVICE_METRICS

__all__ = [
    "ALL_METRICS",
    "DEFAULT_METRICS_PORT",
    "EXPORTED_METRICS",
    "FLEET_METRICS",
    "MULTIPROC_ENV",
    "OTHER",
    "RELAY_AFTER_POLL",
    "RELAY_BEAT",
    "RELAY_DIRECT",
    "SERVICE_METRICS",
    "WORKER_METRICS",
    "DatabaseState",
    "FleetCollector",
    "FleetSnapshot",
    "Instruments",
    "MetricSpec",
    "MetricsServer",
    "PrometheusObserver",
    "bounded_label",
    "count_refused_task",
    "count_relayed",
    "count_tracking",
    "default_metrics_base",
    "exposition_registry",
    "instruments",
    "mark_process_dead",
    "multiprocess_active",
    "multiprocess_dir",
    "prepare_multiprocess_dir",
    "prepare_process_metrics",
    "provider_change_time",
    "provider_label",
    "start_metrics_server",
]
