"""Server metrics in Prometheus' text exposition format (no client library: counters, gauges, histograms)."""

from __future__ import annotations

import threading

# Seconds. Time to first token spans a prefill (tens of ms to seconds on a CPU); a token, a decoding step.
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TOKEN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += 1
        self.sum += value

    def lines(self, name: str) -> list[str]:
        out = [f'{name}_bucket{{le="{bound}"}} {count}' for bound, count in zip(self.buckets, self.counts)]
        out += [
            f'{name}_bucket{{le="+Inf"}} {self.total}',
            f"{name}_sum {self.sum}",
            f"{name}_count {self.total}",
        ]
        return out


class Metrics:
    """Written by the scheduler's thread, read by the server's: one lock around both."""

    def __init__(self):
        self.lock = threading.Lock()
        self.queued = 0
        self.running = 0
        self.prompt_tokens = 0
        self.prompt_tokens_reused = 0
        self.generated_tokens = 0
        self.finished: dict[str, int] = {}  # finish reason -> requests
        self.rejected = 0  # queue full
        self.ttft = Histogram(TTFT_BUCKETS)
        self.token_latency = Histogram(TOKEN_BUCKETS)

    def render(self, prefix: str = "tinyformers") -> str:
        with self.lock:
            lines = [
                f"# HELP {prefix}_queue_depth Requests waiting for a batch slot.",
                f"# TYPE {prefix}_queue_depth gauge",
                f"{prefix}_queue_depth {self.queued}",
                f"# HELP {prefix}_running_requests Requests in the running batch.",
                f"# TYPE {prefix}_running_requests gauge",
                f"{prefix}_running_requests {self.running}",
                f"# HELP {prefix}_prompt_tokens_total Prompt tokens of the requests that joined a batch.",
                f"# TYPE {prefix}_prompt_tokens_total counter",
                f"{prefix}_prompt_tokens_total {self.prompt_tokens}",
                f"# HELP {prefix}_prompt_tokens_reused_total Prompt tokens copied from the prompt cache, not run.",
                f"# TYPE {prefix}_prompt_tokens_reused_total counter",
                f"{prefix}_prompt_tokens_reused_total {self.prompt_tokens_reused}",
                f"# HELP {prefix}_generated_tokens_total Tokens generated.",
                f"# TYPE {prefix}_generated_tokens_total counter",
                f"{prefix}_generated_tokens_total {self.generated_tokens}",
                f"# HELP {prefix}_requests_rejected_total Requests refused because the queue was full.",
                f"# TYPE {prefix}_requests_rejected_total counter",
                f"{prefix}_requests_rejected_total {self.rejected}",
                f"# HELP {prefix}_requests_finished_total Requests finished, by reason.",
                f"# TYPE {prefix}_requests_finished_total counter",
            ]
            lines += [
                f'{prefix}_requests_finished_total{{reason="{reason}"}} {count}'
                for reason, count in sorted(self.finished.items())
            ]
            lines += [
                f"# HELP {prefix}_time_to_first_token_seconds From arrival to the first generated token.",
                f"# TYPE {prefix}_time_to_first_token_seconds histogram",
                *self.ttft.lines(f"{prefix}_time_to_first_token_seconds"),
                f"# HELP {prefix}_time_per_output_token_seconds Between consecutive tokens of a request.",
                f"# TYPE {prefix}_time_per_output_token_seconds histogram",
                *self.token_latency.lines(f"{prefix}_time_per_output_token_seconds"),
            ]
        return "\n".join(lines) + "\n"
