"""deploy/: the Grafana dashboard, its provisioning, and the Prometheus config and alerts parse,
and every query in them names metrics (and labels) that worker.metrics exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.adapters import metrics
from worker.config import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "kyc-poller.json"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"

# Series Prometheus itself adds, and the labels every scraped series carries.
BUILTIN_SERIES = {"up"}
TARGET_LABELS = {"job", "instance"}
PROMQL_WORDS = {
    # aggregations and functions the files use
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "increase",
    "histogram_quantile",
    "time",
    "label_values",
    # keywords
    "by",
    "without",
    "on",
    "ignoring",
    "and",
    "or",
    "unless",
    "bool",
}


def exported() -> dict[str, metrics.MetricSpec]:
    """Every series name the code exports (histograms' _bucket/_count/_sum too) -> its spec."""
    return {name: spec for spec in metrics.EXPORTED_METRICS for name in spec.series_names}


def labels_of(series: str) -> set[str]:
    if series in BUILTIN_SERIES:
        return set(TARGET_LABELS)
    spec = exported()[series]
    extra = {"le"} if series.endswith("_bucket") and spec.kind == "histogram" else set()
    return set(spec.labels) | extra | TARGET_LABELS


def parse_promql(expr: str) -> tuple[list[tuple[str, set[str]]], list[set[str]]]:
    """(selectors as (series, matched labels), grouping label lists) of a PromQL expression.

    Enough of PromQL for these files: selectors with label matchers, range vectors,
    aggregations with by/without, arithmetic and comparisons, Grafana's $variables.
    """
    groupings = [
        {label.strip() for label in match.group(2).split(",") if label.strip()}
        for match in re.finditer(r"\b(by|without|on|ignoring)\s*\(([^)]*)\)", expr)
    ]
    rest = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    selectors: list[tuple[str, set[str]]] = []

    def selector(match: re.Match[str]) -> str:
        name, matchers = match.group(1), match.group(2)
        labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
        selectors.append((name or "", labels))
        return " "

    rest = re.sub(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}", selector, rest)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)  # range vectors: [5m], [$__rate_interval]
    rest = re.sub(r'"[^"]*"', " ", rest)
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\s*(\()?", rest):
        word, call = match.group(1), match.group(2)
        if word in PROMQL_WORDS:
            continue
        assert not call, f"unknown function {word!r} in {expr!r}"
        selectors.append((word, set()))
    return selectors, groupings


def check_query(expr: str) -> set[str]:
    """Assert the expression only selects exported series with their labels; return them."""
    selectors, groupings = parse_promql(expr)
    names = {name for name, _ in selectors}
    assert "" not in names, f"a selector without a metric name in {expr!r}"
    known = set(exported()) | BUILTIN_SERIES
    assert names <= known, f"{sorted(names - known)} are not exported (in {expr!r})"
    assert names & (set(exported()) | BUILTIN_SERIES), expr
    for name, labels in selectors:
        assert labels <= labels_of(name), f"{name} has no label {labels - labels_of(name)}"
    available = set().union(*(labels_of(name) for name in names))
    for grouping in groupings:
        assert grouping <= available, f"grouping by {grouping - available} in {expr!r}"
    return names


def test_the_promql_checker_is_not_vacuous():
    check_query('sum by (provider) (rate(kyc_poller_polls_total{outcome="error"}[5m]))')
    bad = [
        "rate(kyc_poller_polls[5m])",  # a counter without _total
        "kyc_poller_provider_call_duration_seconds",  # a histogram without a suffix
        'kyc_poller_polls_total{verification_id="1"}',  # no such label
        "sum by (status) (kyc_poller_polls_total)",  # nor this one
        "kyc_poller_verifications_bucket",
        "frobnicate(kyc_poller_verifications)",
    ]
    for expr in bad:
        with pytest.raises(AssertionError):
            check_query(expr)
    assert check_query('up{job="kyc-poller-beat"} == 0') == {"up"}


# -- the dashboard ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def test_the_dashboard_is_a_grafana_dashboard(dashboard):
    assert dashboard["uid"] == "kyc-poller" and dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    panels = list(all_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["type"] in {"row", "stat", "timeseries", "state-timeline"}, panel["type"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"] and panel.get("description"), panel["title"]


def test_the_dashboard_panels_do_not_overlap(dashboard):
    taken: set[tuple[int, int]] = set()
    for panel in all_panels(dashboard["panels"]):
        grid = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


def test_the_dashboard_has_datasource_and_provider_variables(dashboard):
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    provider = variables["provider"]
    assert provider["type"] == "query" and provider["multi"] and provider["includeAll"]
    query = provider["query"]["query"]
    match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
    assert match, query
    assert match.group(1) in exported() and match.group(2) in labels_of(match.group(1))


def dashboard_queries(dashboard) -> list[str]:
    return [
        target["expr"]
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def test_every_dashboard_query_names_exported_metrics(dashboard):
    queries = dashboard_queries(dashboard)
    assert len(queries) > 20
    for expr in queries:
        check_query(expr)


def test_every_panel_filters_by_the_provider_where_the_metric_has_one(dashboard):
    for expr in dashboard_queries(dashboard):
        for name, labels in parse_promql(expr)[0]:
            if "provider" in labels_of(name) and name not in BUILTIN_SERIES:
                assert "provider" in labels, f"{name} is not filtered by $provider in {expr!r}"


def test_the_dashboard_shows_every_exported_metric(dashboard):
    used = set().union(*(check_query(expr) for expr in dashboard_queries(dashboard)))
    shown = {spec.name for spec in metrics.EXPORTED_METRICS if spec.series_names & used}
    assert shown == {spec.name for spec in metrics.EXPORTED_METRICS}


# -- Prometheus --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS.read_text())


def test_prometheus_scrapes_every_kyc_poller_service_on_the_metrics_port(prometheus):
    compose = yaml.safe_load(COMPOSE.read_text())
    port = Settings.from_env({}).metrics_port
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    scraped = {}
    for name in ("worker", "control", "intake", "beat"):
        job = jobs[f"kyc-poller-{name}"]
        (discovery,) = job["dns_sd_configs"]
        assert discovery["type"] == "A" and discovery["port"] == port
        scraped.update(dict.fromkeys(discovery["names"], name))
    assert scraped == {
        "worker": "worker",
        "control": "control",
        "intake": "intake",
        "beat": "beat",
    }
    assert set(scraped) <= set(compose["services"])


def test_prometheus_loads_the_alert_rules_from_its_mount(prometheus):
    assert prometheus["rule_files"] == ["/etc/prometheus/" + ALERTS.name]


def test_every_alert_names_exported_metrics():
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 5
    names = [alert["alert"] for alert in alerts]
    assert len(names) == len(set(names))
    for alert in alerts:
        check_query(alert["expr"])
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}
        assert alert["annotations"]["summary"]


def test_grafana_reads_the_compose_prometheus():
    compose = yaml.safe_load(COMPOSE.read_text())
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"]
    assert source["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in compose["services"]["prometheus"]["ports"]
    dashboard = json.loads(DASHBOARD.read_text())
    default = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert default["current"]["value"] == source["uid"]


def test_promtool_accepts_the_config_and_rules_when_installed(tmp_path):
    """A second opinion where Debian's `prometheus` package (promtool) is installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (optional: apt-get install prometheus)")
    # The config names the rules by their path in the container: check a copy beside them.
    config = yaml.safe_load(PROMETHEUS.read_text())
    config["rule_files"] = [str(ALERTS)]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    for argv in (["check", "config", str(local)], ["check", "rules", str(ALERTS)]):
        done = subprocess.run(
            [promtool, *argv], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
