"""Counters for /metrics (Prometheus text format): jobs from the job store, durations and HTTP
responses counted in this process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from api.jobs import JobStore


@dataclass
class Metrics:
    durations: dict[str, list[float]] = field(default_factory=lambda: {"video": [], "batch": []})
    requests: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.durations.setdefault(kind, []).append(seconds)

    def count_response(self, status: int) -> None:
        with self.lock:
            self.requests[status] = self.requests.get(status, 0) + 1

    def prometheus_text(self, jobs: JobStore) -> str:
        lines = ["# HELP dhf_jobs Jobs by kind and status.", "# TYPE dhf_jobs gauge"]
        for (kind, status), count in sorted(jobs.counts().items()):
            lines.append(f'dhf_jobs{{kind="{kind}",status="{status}"}} {count}')
        lines += [
            "# HELP dhf_job_duration_seconds Time jobs took in this process.",
            "# TYPE dhf_job_duration_seconds summary",
        ]
        with self.lock:
            for kind, values in sorted(self.durations.items()):
                lines.append(f'dhf_job_duration_seconds_sum{{kind="{kind}"}} {sum(values):.3f}')
                lines.append(f'dhf_job_duration_seconds_count{{kind="{kind}"}} {len(values)}')
            lines += [
                "# HELP dhf_http_responses_total HTTP responses by status code.",
                "# TYPE dhf_http_responses_total counter",
            ]
            for status, count in sorted(self.requests.items()):
                lines.append(f'dhf_http_responses_total{{code="{status}"}} {count}')
        return "\n".join(lines) + "\n"
