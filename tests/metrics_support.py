"""Reading Prometheus' text exposition in tests: scrape the web's /metrics or a worker's port and look up samples."""

from __future__ import annotations

import socket
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "test-scrape-token-0123456789abcdef0123456789"


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict
    value: float


class Exposition:
    """The families and samples of one scrape."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = list(text_string_to_metric_families(text))
        self.samples = [
            Sample(sample.name, dict(sample.labels), sample.value)
            for family in self.families
            for sample in family.samples
        ]

    def find(self, sample_name: str, /, **labels: str) -> list[Sample]:
        return [
            s for s in self.samples if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, sample_name: str, /, **labels: str) -> float:
        """The sum of the samples ``sample_name`` with these labels (0 when there is none)."""
        return sum(s.value for s in self.find(sample_name, **labels))

    def names(self) -> set[str]:
        return {family.name for family in self.families}


def scrape_web(client, **headers) -> Exposition:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:300]
    return Exposition(response.content.decode())


def scrape_url(url: str, token: str | None = TOKEN, timeout: float = 5.0) -> Exposition:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return Exposition(response.read().decode())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
