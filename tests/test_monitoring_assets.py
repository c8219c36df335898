"""The alerting assets under deploy/monitoring/ speak the metrics the code exports: every metric name in the alert
rules, their unit tests and the Grafana dashboard exists in the code's registry, every label they group or match on
is one the code may export, and Prometheus' own promtool accepts the rules, runs their unit tests and accepts the
scrape configuration."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from apps.core import metrics

MONITORING = Path(__file__).resolve().parent.parent / "deploy" / "monitoring"
METRIC_NAME = re.compile(r"\b((?:gpux|django)_[a-z0-9_]+)\b")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
MATCHER = re.compile(r"\{([^}]*)\}")
LABEL_IN_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
PROMETHEUS_LABELS = {"instance", "job", "role"}  # added by Prometheus or by the scrape configuration


def rule_expressions() -> list[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    expressions = []
    for path in sorted((MONITORING / "grafana").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            expressions.extend(target["expr"] for target in panel.get("targets", []))
    return expressions


def unit_test_series() -> list[str]:
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())
    return [series["series"] for test in tests["tests"] for series in test["input_series"]]


def test_the_assets_have_expressions_to_check():
    assert len(rule_expressions()) >= 10
    assert len(dashboard_expressions()) >= 20


@pytest.mark.parametrize("source", ["alerts", "dashboards", "alert unit tests"])
def test_every_metric_the_assets_name_is_exported_by_the_code(source):
    expressions = {
        "alerts": rule_expressions,
        "dashboards": dashboard_expressions,
        "alert unit tests": unit_test_series,
    }[source]()
    exported = metrics.exported_sample_names()
    named = {name for expression in expressions for name in METRIC_NAME.findall(expression)}
    assert named, f"no metric named in the {source}"
    unknown = sorted(named - exported)
    assert not unknown, f"the {source} name metrics the code does not export: {unknown}"


def test_the_code_exports_what_the_runbook_alerts_on():
    exported = metrics.exported_sample_names()
    for name in (
        "gpux_queue_oldest_message_age_seconds",
        "gpux_workers_up",
        "gpux_gpu_memory_used_bytes",
        "gpux_registry_syncs_total",
        "gpux_audit_chains",
        "django_http_responses_total_by_status_view_method_total",
        "gpux_inference_latency_seconds_bucket",
        "gpux_usage_stream_oldest_entry_age_seconds",
        "gpux_usage_stream_entries",
        "gpux_usage_stream_max_entries",
    ):
        assert name in exported, name


def test_every_label_the_assets_use_is_one_the_code_may_export():
    allowed = metrics.ALLOWED_LABELS | PROMETHEUS_LABELS
    for expression in [*rule_expressions(), *dashboard_expressions()]:
        used = {label.strip() for group in GROUPING.findall(expression) for label in group.split(",") if label.strip()}
        for matcher in MATCHER.findall(expression):
            used |= set(LABEL_IN_MATCHER.findall(matcher))
        assert used <= allowed, f"{expression!r} uses labels the code never exports: {sorted(used - allowed)}"


def test_a_metric_name_that_does_not_exist_is_caught():
    """Guards the check itself: a misspelt name must fail it."""
    assert "gpux_queue_oldest_message_age" not in metrics.exported_sample_names()
    assert METRIC_NAME.findall('max by (queue) (gpux_queue_depth{queue="sync"}) > 0') == ["gpux_queue_depth"]


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is missing: apt-get install prometheus (CI installs it)")
    return path


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    promtool = _promtool()
    checked = subprocess.run([promtool, "check", "rules", "alerts.yml"], cwd=MONITORING, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts.test.yml"], cwd=MONITORING, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_accepts_the_scrape_configuration(tmp_path):
    promtool = _promtool()
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(MONITORING / name, tmp_path / name)
    checked = subprocess.run(
        [promtool, "check", "config", "--syntax-only", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
