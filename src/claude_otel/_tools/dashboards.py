"""The Grafana dashboards' panels as plain data: the one source of the dashboards and of `claude-otel report`.

`scripts/generate_dashboards.py` renders `DASHBOARDS` to `dashboards/<name>.json` (Grafana JSON, with
grafana-foundation-sdk, a development dependency); `claude_otel._report` evaluates the same queries against a
Prometheus at run time with nothing but the standard library and matplotlib. Nothing here imports either.

The PromQL is written for the metrics as the OpenTelemetry Collector's `prometheus` exporter (or the Python
Prometheus exporter) exposes them: classic underscore translation with unit suffixes and `_total` (docs/metrics-and-cost.md); the service name is the `job` label. Every query filters on the dashboards' template
variables `$service` (`job`, one service), `$model`, `$feature` and `$tenant`, whose "All" value is `.*` (which
matches series without the label too: calls made outside any `claude_otel.attributes(...)`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["timeseries", "stat", "bars", "traces"]
"""How a panel shows its queries: lines over time (range queries), one number or one bar per series over the whole
time range (instant queries), or a Jaeger trace search (no PromQL)."""


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    """A Grafana unit id: `currencyUSD`, `s`, `percentunit`, `short`, `reqps`."""
    kind: Kind
    queries: tuple[Query, ...] = ()
    width: int = 12
    exemplar: bool = False
    """Show exemplars (points linking to their trace through the Prometheus data source's
    `exemplarTraceIdDestinations`), for histogram panels fed by the collector."""
    traces: dict[str, object] | None = None
    """For `traces` panels: the Jaeger data source query (`queryType: search`, `service`, `tags`, `limit`)."""


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    metric: str
    """`label_values(<metric>, <label>)`: the values of `label` on the series `metric` (a selector)."""
    target_label: str
    multi: bool = True
    """Several values and "All" (`.*`) may be picked; else exactly one."""


@dataclass(frozen=True)
class Dashboard:
    name: str
    """The file name: `dashboards/<name>.json`, and `<name>.png` for `claude-otel report`."""
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]


FILTER = 'job=~"$service", gen_ai_request_model=~"$model", claude_otel_feature=~"$feature", claude_otel_tenant=~"$tenant"'
"""The template variables' selection, in every selector."""

VARIABLES = (
    # One service at a time: the Jaeger trace search takes one service name (the `job` label is the service name).
    Variable("service", "Service", "claude_otel_calls_total", "job", multi=False),
    Variable("model", "Model", 'claude_otel_calls_total{job=~"$service"}', "gen_ai_request_model"),
    Variable("feature", "Feature", 'claude_otel_calls_total{job=~"$service"}', "claude_otel_feature"),
    Variable("tenant", "Tenant", 'claude_otel_calls_total{job=~"$service"}', "claude_otel_tenant"),
)
ALL = ".*"
"""Each variable's value for "All"."""

_COST = "claude_otel_cost_USD_total"
_CALLS = "claude_otel_calls_total"
_ATTEMPTS = "claude_otel_attempts_total"
_DURATION = "gen_ai_client_inference_duration_seconds"
_TTFT = "gen_ai_client_inference_time_to_first_chunk_seconds"
_USAGE = "gen_ai_client_inference_usage_{}_total"
_TOKEN_KINDS = (
    ("input_tokens", "input (cache included)"),
    ("cache_read_input_tokens", "cache read"),
    ("cache_write_input_tokens", "cache write"),
    ("output_tokens", "output"),
    ("reasoning_output_tokens", "reasoning"),
)


def _s(metric: str, extra: str = "") -> str:
    """`metric{<FILTER>, extra}`."""
    return f"{metric}{{{FILTER}{', ' + extra if extra else ''}}}"


def _rate(metric: str, extra: str = "", by: str = "", window: str = "$__rate_interval", fn: str = "rate") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} ({fn}({_s(metric, extra)}[{window}]))"


def _total(metric: str, extra: str = "", by: str = "") -> str:
    """The increase over the dashboard's time range."""
    return _rate(metric, extra, by, "$__range", "increase")


def _quantiles(metric: str, by: str, extra: str = "") -> tuple[Query, ...]:
    return tuple(
        Query(f"histogram_quantile({q}, {_rate(metric + '_bucket', extra, 'le, ' + by)})", f"p{round(q * 100)} {{{{{by}}}}}")
        for q in (0.5, 0.95, 0.99)
    )


_SAVINGS = "claude_otel_cost_cache_savings_USD_total"
_BATCH = 'anthropic_response_service_tier="batch"'
_PRICED = 'claude_otel_cost_part!=""'
_BEYOND_TOKENS = 'claude_otel_cost_part=~"server_tools|surcharge"'

COST = Dashboard(
    "cost",
    "claude-otel-cost",
    "Claude: cost per feature",
    "Spend per feature, tenant and model, tokens by kind, prompt caching and Message Batches (claude_otel metrics).",
    (
        Panel("Spend", "Total spend on Claude calls over the time range, at the prices in use (batch results included, at the batch discount).", "currencyUSD", "stat", (Query(_total(_COST)),), width=6),
        Panel("Batch share of spend", "Share of the spend that went through Message Batches (service tier `batch`).", "percentunit", "stat", (Query(f"{_total(_COST, _BATCH)} / {_total(_COST)}"),), width=6),
        Panel("Cache hit ratio", "Input tokens read from the prompt cache, out of all input tokens (cache reads and writes included).", "percentunit", "stat", (Query(f"{_total(_USAGE.format('cache_read_input_tokens'))} / {_total(_USAGE.format('input_tokens'))}"),), width=6),
        Panel("Money caching saved", "What the prompt cache reads would have cost at each model's input rate, less what they cost, over the time range (metric `claude_otel.cost.cache_savings`, at the prices in use).", "currencyUSD", "stat", (Query(_total(_SAVINGS)),), width=6),
        Panel("Spend per hour by feature", "USD per hour, by the `feature` attribution (`claude_otel.attributes(feature=...)`).", "currencyUSD", "timeseries", (Query(f"{_rate(_COST, by='claude_otel_feature')} * 3600", "{{claude_otel_feature}}"),)),
        Panel("Spend per hour by tenant", "USD per hour, by the `tenant` attribution.", "currencyUSD", "timeseries", (Query(f"{_rate(_COST, by='claude_otel_tenant')} * 3600", "{{claude_otel_tenant}}"),)),
        Panel("Spend per hour by model", "USD per hour, by requested model.", "currencyUSD", "timeseries", (Query(f"{_rate(_COST, by='gen_ai_request_model')} * 3600", "{{gen_ai_request_model}}"),)),
        Panel("Batch vs interactive spend per hour", "USD per hour, by service tier: `batch` (Message Batches, half price) against `standard`/`priority` (interactive calls).", "currencyUSD", "timeseries", (Query(f"{_rate(_COST, by='anthropic_response_service_tier')} * 3600", "{{anthropic_response_service_tier}}"),)),
        Panel("Top features by cost", "The ten features that spent most over the time range.", "currencyUSD", "bars", (Query(f"topk(10, {_total(_COST, by='claude_otel_feature')})", "{{claude_otel_feature}}"),)),
        Panel("Spend by tenant", "Spend per tenant over the time range.", "currencyUSD", "bars", (Query(_total(_COST, by="claude_otel_tenant"), "{{claude_otel_tenant}}"),)),
        Panel("Spend by model", "Spend per model over the time range.", "currencyUSD", "bars", (Query(_total(_COST, by="gen_ai_request_model"), "{{gen_ai_request_model}}"),)),
        Panel("Spend by feature and invoice line", "Spend per feature over the time range, split by `claude_otel.cost.part`: `tokens` (input, output, cache writes and reads at standard rates), `server_tools` (web search fees), `surcharge` (what fast mode and US-only inference add).", "currencyUSD", "bars", (Query(_total(_COST, _PRICED, by="claude_otel_feature, claude_otel_cost_part"), "{{claude_otel_feature}} {{claude_otel_cost_part}}"),)),
        Panel("Tool fees and surcharges per hour by feature", "USD per hour of the invoice lines beyond tokens, by feature: web search fees (`server_tools`) and the fast-mode and US-only inference premiums (`surcharge`).", "currencyUSD", "timeseries", (Query(f"{_rate(_COST, _BEYOND_TOKENS, by='claude_otel_feature, claude_otel_cost_part')} * 3600", "{{claude_otel_feature}} {{claude_otel_cost_part}}"),)),
        Panel("Tokens by kind", "Tokens per minute by kind. Input includes the cache reads and writes; reasoning is part of output.", "short", "timeseries", tuple(Query(f"{_rate(_USAGE.format(kind))} * 60", label) for kind, label in _TOKEN_KINDS)),
        Panel("Cache hit ratio over time", "Cache-read input tokens out of all input tokens.", "percentunit", "timeseries", (Query(f"{_rate(_USAGE.format('cache_read_input_tokens'), by='claude_otel_feature')} / {_rate(_USAGE.format('input_tokens'), by='claude_otel_feature')}", "{{claude_otel_feature}}"),)),
        Panel("Money caching saved per hour", "USD per hour saved by prompt cache reads (their tokens at the input rate, less their cost), by feature.", "currencyUSD", "timeseries", (Query(f"{_rate(_SAVINGS, by='claude_otel_feature')} * 3600", "{{claude_otel_feature}}"),)),
    ),
)

_FAILED = 'error_type!=""'
_HEADROOM = 'claude_otel_rate_limit_{}{{job=~"$service", gen_ai_request_model=~"$model"}}'
"""A rate-limit gauge: per model, not per feature or tenant (the limits are the organization's)."""
_ALERT_LABELS = "alertname, severity, job, gen_ai_request_model, claude_otel_rate_limit_kind, claude_otel_feature, claude_otel_tenant"
_ALERTMANAGER = "http://localhost:9093"

RELIABILITY = Dashboard(
    "reliability",
    "claude-otel-reliability",
    "Claude: reliability",
    "Request and error rates, rate limits and overload, retries, stream failures, refusals and stop reasons; the recent failed requests in Jaeger.",
    (
        Panel("Request rate", "Claude calls per second, by operation (`chat`, `count_tokens`, `batches.*`).", "reqps", "timeseries", (Query(_rate(_CALLS, by="gen_ai_operation_name"), "{{gen_ai_operation_name}}"),)),
        Panel("Error ratio", "Calls that ended with an error (after their retries), out of all calls.", "percentunit", "timeseries", (Query(f"{_rate(_CALLS, _FAILED)} / {_rate(_CALLS)}", "error ratio"),)),
        Panel("Errors by error.type", "Failed calls per second by `error.type`: the API's error type (`rate_limit_error`, `overloaded_error`, ...), or the exception's class for a connection failure or timeout.", "reqps", "timeseries", (Query(_rate(_CALLS, _FAILED, "error_type"), "{{error_type}}"),)),
        Panel("Errors by classification", "Failed calls per second by `claude_otel.error.category`: whose problem it is (`caller_error`, `rate_limited`, `overloaded`, `platform_error`, `timeout`, `connection`, ...).", "reqps", "timeseries", (Query(_rate(_CALLS, _FAILED, "claude_otel_error_category"), "{{claude_otel_error_category}}"),)),
        Panel("429 and 529 responses", "HTTP attempts answered 429 (rate limited) or 529 (overloaded) per second: retried ones included.", "reqps", "timeseries", (Query(_rate(_ATTEMPTS, 'http_response_status_code=~"429|529"', "http_response_status_code"), "{{http_response_status_code}}"),)),
        Panel("Attempts per call", "HTTP attempts per call, by operation: 1 when nothing was retried.", "short", "timeseries", (Query(f"{_rate(_ATTEMPTS, by='gen_ai_operation_name')} / {_rate(_CALLS, by='gen_ai_operation_name')}", "{{gen_ai_operation_name}}"),)),
        Panel("Stream failures after 200", "Streams that got their 200 and then failed: an error event mid-stream (`failed`) or a connection cut before the end (`truncated`), by error type.", "reqps", "timeseries", (Query(_rate(_CALLS, 'claude_otel_stream_outcome=~"failed|truncated"', "claude_otel_stream_outcome, error_type"), "{{claude_otel_stream_outcome}}: {{error_type}}"),)),
        Panel("Refusals by category", "Answers that stopped with `refusal`, by `stop_details.category`, over the time range.", "short", "bars", (Query(_total(_CALLS, 'anthropic_message_stop_reason="refusal"', "anthropic_message_stop_details_category"), "{{anthropic_message_stop_details_category}}"),)),
        Panel("Stop reasons", "Answers by stop reason over the time range (`end_turn`, `max_tokens`, `tool_use`, `refusal`, ...).", "short", "bars", (Query(_total(_CALLS, 'anthropic_message_stop_reason!=""', "anthropic_message_stop_reason"), "{{anthropic_message_stop_reason}}"),)),
        Panel("Tools called per feature", "Tool calls the model asked for over the time range, by feature and tool: the application's tools (`function`) and Anthropic's server tools (`extension`: web search, web fetch, ...). Names only: arguments are content.", "short", "bars", (Query(_total("claude_otel_tool_calls_total", by="claude_otel_feature, gen_ai_tool_name"), "{{claude_otel_feature}} {{gen_ai_tool_name}}"),)),
        Panel("Stream outcomes", "Streams by how they ended over the time range: `completed`, `abandoned` (the application stopped reading), `failed`, `truncated`.", "short", "bars", (Query(_total(_CALLS, 'claude_otel_stream_outcome!=""', "claude_otel_stream_outcome"), "{{claude_otel_stream_outcome}}"),)),
        Panel("Batch results by type", "Message Batch results read, by type (`succeeded`, `errored`, `canceled`, `expired`), over the time range.", "short", "bars", (Query(_total("claude_otel_batch_results_total", by="claude_otel_batch_result_type"), "{{claude_otel_batch_result_type}}"),)),
        Panel("Rate-limit headroom %", "What is left of each Anthropic rate limit, per model: requests, input and output tokens per minute, and `tokens` (the most restrictive), as the last response's `anthropic-ratelimit-*` headers said (`claude_otel.rate_limit.remaining` / `.limit`). Under 10% for 5 minutes, ClaudeRateLimitHeadroomLow fires.", "percentunit", "timeseries", (Query(f"min by (gen_ai_request_model, claude_otel_rate_limit_kind) ({_HEADROOM.format('remaining')} / {_HEADROOM.format('limit')})", "{{gen_ai_request_model}} {{claude_otel_rate_limit_kind}}"),)),
        Panel("Firing alerts", f"The claude-otel alerts firing now (stack/prometheus/alerts.yml; docs/alerts.md says what to do about each), by what they fired on. Every service's: the per-model and per-feature alerts belong to no one service. Alertmanager ({_ALERTMANAGER}) has their notifications.", "short", "bars", (Query(f"sum by ({_ALERT_LABELS}) (ALERTS{{alertname=~\"Claude.*\", alertstate=\"firing\"}})", "{{alertname}} {{job}} {{gen_ai_request_model}} {{claude_otel_rate_limit_kind}} {{claude_otel_feature}} {{claude_otel_tenant}}"),)),
        Panel(
            "Recent failed requests",
            "The last failed Claude spans of the selected service in Jaeger (tags `error=true gen_ai.provider.name=anthropic`): each row links to its trace, whose call span carries `anthropic.request.id`, `error.type` and every attempt. To find the trace of a request id, search Jaeger by tag `anthropic.request.id=req_...`.",
            "short",
            "traces",
            width=24,
            traces={"queryType": "search", "service": "$service", "tags": "error=true gen_ai.provider.name=anthropic", "limit": 20},
        ),
    ),
)

LATENCY = Dashboard(
    "latency",
    "claude-otel-latency",
    "Claude: latency",
    "Call duration and time to first token by model and feature (gen_ai.client.inference.* histograms). Points with exemplars link to their trace.",
    (
        Panel("Duration by model", "Duration of a call, its retries and the reading of its stream included: p50, p95 and p99 by model.", "s", "timeseries", _quantiles(_DURATION, "gen_ai_request_model"), exemplar=True),
        Panel("Time to first token by model", "Streams only: time from the start of the call to its first content delta, p50, p95 and p99 by model.", "s", "timeseries", _quantiles(_TTFT, "gen_ai_request_model"), exemplar=True),
        Panel("p95 duration by feature", "95th percentile of call duration, by the `feature` attribution.", "s", "timeseries", (Query(f"histogram_quantile(0.95, {_rate(_DURATION + '_bucket', by='le, claude_otel_feature')})", "{{claude_otel_feature}}"),), exemplar=True),
        Panel("Mean duration by feature", "Mean call duration, by feature.", "s", "timeseries", (Query(f"{_rate(_DURATION + '_sum', by='claude_otel_feature')} / {_rate(_DURATION + '_count', by='claude_otel_feature')}", "{{claude_otel_feature}}"),)),
        Panel("p95 duration of failed calls", "95th percentile of the duration of calls that failed, by `error.type`: how long users waited for an error.", "s", "timeseries", (Query(f"histogram_quantile(0.95, {_rate(_DURATION + '_bucket', _FAILED, 'le, error_type')})", "{{error_type}}"),), exemplar=True),
        Panel("p95 time to first token by feature", "95th percentile of the time to first token of streams, by feature.", "s", "timeseries", (Query(f"histogram_quantile(0.95, {_rate(_TTFT + '_bucket', by='le, claude_otel_feature')})", "{{claude_otel_feature}}"),), exemplar=True),
    ),
)

DASHBOARDS = (COST, RELIABILITY, LATENCY)


def expand(expr: str, values: dict[str, str]) -> str:
    """`expr` with each `$name` or `${name}` (template variables and Grafana's `$__range`, `$__rate_interval`,
    `$__interval`) replaced by `values[name]`; unknown names are left as they are."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", substitute, expr)


def queries() -> list[tuple[Dashboard, Panel, Query]]:
    """Every PromQL query of every panel."""
    return [(dashboard, panel, query) for dashboard in DASHBOARDS for panel in dashboard.panels for query in panel.queries]
