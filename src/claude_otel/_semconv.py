"""Every name and value that claude_otel writes (attributes, span and event names, metric names), in one place.

A test (`tests/test_semconv.py`) fails when a literal of such a name appears in another module.

The GenAI names follow the OpenTelemetry GenAI semantic conventions as they stand in
`open-telemetry/semantic-conventions-genai` (the `opentelemetry-semantic-conventions` package only has the
deprecated, pre-move names). The `anthropic.*` names are the ones the Anthropic SDK's own tracing uses, so that
queries written against the SDK's spans keep working. The `claude_otel.*` names are ours and say so.
"""

from __future__ import annotations

from typing import Final

# --- GenAI ------------------------------------------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_REASONING_LEVEL: Final = "gen_ai.request.reasoning.level"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
# Content, recorded only when the application opts in (`claude_otel._content`).
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
EVENT_INFERENCE_DETAILS: Final = "gen_ai.client.inference.operation.details"
"""The conventions' opt-in event of an inference call, with its content: a log record of the logs signal."""

OPERATION_CHAT: Final = "chat"
OPERATION_COUNT_TOKENS: Final = "count_tokens"
"""Not a GenAI operation name of the conventions, which have none for counting tokens: in span names and metrics."""
# The Message Batches operations (no GenAI conventions either): on metrics as `gen_ai.operation.name`; their spans
# are named as the SDK names its own, `anthropic.messages.batches.create`, ...
OPERATION_BATCHES_CREATE: Final = "batches.create"
OPERATION_BATCHES_RETRIEVE: Final = "batches.retrieve"
OPERATION_BATCHES_LIST: Final = "batches.list"
OPERATION_BATCHES_CANCEL: Final = "batches.cancel"
OPERATION_BATCHES_DELETE: Final = "batches.delete"
OPERATION_BATCHES_RESULTS: Final = "batches.results"

PROVIDER_ANTHROPIC: Final = "anthropic"
PROVIDER_AWS_BEDROCK: Final = "aws.bedrock"
PROVIDER_GCP_VERTEX_AI: Final = "gcp.vertex_ai"

# `gen_ai.response.finish_reasons` values for Anthropic stop reasons (the conventions' FinishReason enum where one
# fits, the raw stop reason where none does). `error` is the conventions' value for a finish reason that was expected
# but never came: the call failed, was abandoned, or its stream ended early.
FINISH_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}
FINISH_REASON_ERROR: Final = "error"

# --- General (stable semantic conventions) -----------------------------------------------------------------------
ERROR_TYPE: Final = "error.type"
EXCEPTION_MESSAGE: Final = "exception.message"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_REQUEST_BODY_SIZE: Final = "http.request.body.size"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_ROUTE: Final = "http.route"
URL_FULL: Final = "url.full"
URL_PATH: Final = "url.path"
URL_SCHEME: Final = "url.scheme"
HTTP_RESPONSE_HEADER: Final = "http.response.header"
"""Prefix of the conventions' opt-in `http.response.header.<name>` attributes (string[] values)."""

# --- Anthropic (the names of the SDK's own tracing, `anthropic/_tracing.py` and `lib/_tracing/`) -------------------
ANTHROPIC_REQUEST_ID: Final = "anthropic.request.id"
ANTHROPIC_ORGANIZATION_ID: Final = "anthropic.organization.id"
ANTHROPIC_WORKSPACE_ID: Final = "anthropic.workspace.id"
ANTHROPIC_BETA: Final = "anthropic.beta"
ANTHROPIC_REQUEST_SERVICE_TIER: Final = "anthropic.request.service_tier"
ANTHROPIC_RESPONSE_SERVICE_TIER: Final = "anthropic.response.service_tier"
ANTHROPIC_THINKING_TYPE: Final = "anthropic.thinking.type"
ANTHROPIC_THINKING_BUDGET_TOKENS: Final = "anthropic.thinking.budget_tokens"
ANTHROPIC_STOP_REASON: Final = "anthropic.message.stop_reason"
ANTHROPIC_STOP_DETAILS_CATEGORY: Final = "anthropic.message.stop_details.category"
"""Ours, in the SDK's namespace: the `stop_details.category` of a `refusal` (`cyber`, `bio`, ...)."""
ANTHROPIC_STOP_DETAILS_TYPE: Final = "anthropic.message.stop_details.type"
ANTHROPIC_CACHE_5M_INPUT_TOKENS: Final = "anthropic.usage.cache_creation.ephemeral_5m_input_tokens"
ANTHROPIC_CACHE_1H_INPUT_TOKENS: Final = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"
ANTHROPIC_COMPACTION_INPUT_TOKENS: Final = "anthropic.usage.compaction.input_tokens"
ANTHROPIC_COMPACTION_OUTPUT_TOKENS: Final = "anthropic.usage.compaction.output_tokens"
ANTHROPIC_COUNT_TOKENS_INPUT_TOKENS: Final = "anthropic.message.count_tokens.input_tokens"
ANTHROPIC_MESSAGE_BATCH_ID: Final = "anthropic.message.batch.id"
ANTHROPIC_MESSAGE_BATCH_REQUEST_COUNT: Final = "anthropic.message.batch.request_count"
ANTHROPIC_MESSAGE_BATCH_PROCESSING_STATUS: Final = "anthropic.message.batch.processing_status"
"""Ours, in the SDK's namespace, as the API names it: `in_progress`, `canceling`, `ended`."""
ANTHROPIC_MESSAGE_BATCH_REQUEST_COUNTS: Final = "anthropic.message.batch.request_counts"
"""Ours, in the SDK's namespace: prefix of `.processing`, `.succeeded`, `.errored`, `.canceled`, `.expired`."""

# Each attribute with the response header it is read from.
RESPONSE_HEADER_ATTRIBUTES: Final = (
    (ANTHROPIC_REQUEST_ID, "request-id"),
    (ANTHROPIC_ORGANIZATION_ID, "anthropic-organization-id"),
    (ANTHROPIC_WORKSPACE_ID, "anthropic-workspace-id"),
)

# --- claude_otel --------------------------------------------------------------------------------------------------
CLAUDE_OTEL_STREAM_OUTCOME: Final = "claude_otel.stream.outcome"
"""How the reading of a streamed response ended: one of the `Outcome` values."""
CLAUDE_OTEL_ATTEMPTS: Final = "claude_otel.attempts"
"""How many HTTP requests the SDK sent for the call: the first and every retry."""
CLAUDE_OTEL_REQUEST_IDS: Final = "claude_otel.request_ids"
"""The `request-id` of every attempt that got a response, in order (the last is `anthropic.request.id`)."""
CLAUDE_OTEL_RETRY_DELAY: Final = "claude_otel.retry.delay"
"""On an attempt span: the seconds the SDK waited after it, before the next attempt."""
CLAUDE_OTEL_ERROR_CATEGORY: Final = "claude_otel.error.category"
"""Whose problem a failure is and what to do about it: see `claude_otel._errors`."""
CLAUDE_OTEL_ERROR_RETRYABLE: Final = "claude_otel.error.retryable"
"""Whether the same request may succeed later (a transient category, and the API did not say `x-should-retry: false`)."""
CLAUDE_OTEL_RETRIES_EXHAUSTED: Final = "claude_otel.retries_exhausted"
"""The SDK retried as often as it was allowed to, and the last attempt failed too."""
CLAUDE_OTEL_STREAM_EVENTS: Final = "claude_otel.stream.events"
CLAUDE_OTEL_STREAM_CONTENT_DELTAS: Final = "claude_otel.stream.content_deltas"
CLAUDE_OTEL_ELAPSED: Final = "claude_otel.elapsed"
"""On an event: the seconds from the call's start to it."""

CLAUDE_OTEL_COST_USD: Final = "claude_otel.cost.usd"
"""What the call cost in US dollars, at the prices in use (batch discount applied); its parts below."""
CLAUDE_OTEL_COST_INPUT_USD: Final = "claude_otel.cost.input_usd"
CLAUDE_OTEL_COST_CACHE_WRITE_USD: Final = "claude_otel.cost.cache_write_usd"
CLAUDE_OTEL_COST_CACHE_READ_USD: Final = "claude_otel.cost.cache_read_usd"
CLAUDE_OTEL_COST_OUTPUT_USD: Final = "claude_otel.cost.output_usd"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
"""`function` for the application's tools (`tool_use` blocks), `extension` for the tools the API calls itself: Anthropic's
server tools (`server_tool_use`) and remote MCP servers' tools (`mcp_tool_use`)."""
CLAUDE_OTEL_TOOL_CALLS_NAMES: Final = "claude_otel.tool_calls.names"
"""The tools the model called in the response, in order (names only: arguments are content, captured only on
opt-in); with `.ids` (the `tool_use` ids) and `.types` (`gen_ai.tool.type` of each), arrays of the same length."""
CLAUDE_OTEL_TOOL_CALLS_IDS: Final = "claude_otel.tool_calls.ids"
CLAUDE_OTEL_TOOL_CALLS_TYPES: Final = "claude_otel.tool_calls.types"
TOOL_TYPE_FUNCTION: Final = "function"
TOOL_TYPE_EXTENSION: Final = "extension"
CLAUDE_OTEL_COST_SERVER_TOOLS_USD: Final = "claude_otel.cost.server_tools_usd"
"""The server tools' fees: web searches, at the price per 1,000 of the model's row."""
CLAUDE_OTEL_COST_SURCHARGE_USD: Final = "claude_otel.cost.surcharge_usd"
"""What fast mode and US-only inference add to the tokens' standard rates."""
CLAUDE_OTEL_COST_PART: Final = "claude_otel.cost.part"
"""Label of the cost counter: `tokens`, `server_tools` or `surcharge` (absent on an unpriced call's 0)."""
COST_PART_TOKENS: Final = "tokens"
COST_PART_SERVER_TOOLS: Final = "server_tools"
COST_PART_SURCHARGE: Final = "surcharge"
CLAUDE_OTEL_COST_CACHE_SAVINGS_USD: Final = "claude_otel.cost.cache_savings_usd"
"""What the cache reads would have cost at the input rate, less what they cost; set when a call read the cache."""
CLAUDE_OTEL_COST_UNPRICED: Final = "claude_otel.cost.unpriced"
"""True when the model has no price in the table: tokens are counted, the cost is left unset (never guessed)."""

CLAUDE_OTEL_BATCH_CUSTOM_ID_COUNT: Final = "claude_otel.batch.custom_id_count"
"""On `batches.create`: distinct `custom_id`s (fewer than the requests: duplicates, which the API rejects)."""
CLAUDE_OTEL_BATCH_MODELS: Final = "claude_otel.batch.models"
"""On `batches.create`: the distinct models the requests ask for."""
CLAUDE_OTEL_BATCH_LISTED: Final = "claude_otel.batch.listed"
"""On `batches.list`: how many batches the page has."""
CLAUDE_OTEL_BATCH_TURNAROUND: Final = "claude_otel.batch.turnaround"
"""Seconds from a batch's `created_at` to its `ended_at`: on spans that saw it ended, and a histogram metric."""
CLAUDE_OTEL_RATE_LIMIT_KIND: Final = "claude_otel.rate_limit.kind"
"""Which Anthropic rate limit a `claude_otel.rate_limit.*` gauge point is: `requests`, `input_tokens`,
`output_tokens`, or `tokens` (the most restrictive of the token limits), from `anthropic-ratelimit-{kind}-*`."""
CLAUDE_OTEL_BATCH_RESULTS: Final = "claude_otel.batch.results"
"""On `batches.results`: prefix of the count of results read by type (`.succeeded`, `.errored`, ...); the counter
metric of batch results."""
CLAUDE_OTEL_BATCH_RESULT_TYPE: Final = "claude_otel.batch.result.type"
"""On the batch results metric: `succeeded`, `errored`, `canceled`, `expired`."""
CLAUDE_OTEL_BATCH_RESULTS_READ: Final = "claude_otel.batch.results_read"
"""On the failure event of a results read: the lines read before it ended."""
CLAUDE_OTEL_CONTENT_TRUNCATED: Final = "claude_otel.content.truncated"
"""True when captured content was shortened to fit `max_content_bytes` (the SDK's is `anthropic.content.truncated`)."""

EVENT_STREAM_FAILURE: Final = "claude_otel.stream.failure"
"""Span event of a stream that failed or was cut short after HTTP 200: what had arrived by then."""
EVENT_REFUSAL: Final = "claude_otel.refusal"
"""Span event of a `refusal` stop reason, with its `stop_details`."""

# The SDK's `error.type` for a stream that ended without `message_stop` (its own span uses it).
ERROR_TYPE_TRUNCATED_STREAM: Final = "api_error"
# The other values of `error.type` that are not the API's (its error envelope's type, or an HTTP status code).
ERROR_TYPE_CLIENT_TIMEOUT: Final = "client_timeout_error"
ERROR_TYPE_CONNECTION: Final = "connection_error"
ERROR_TYPE_CLIENT: Final = "client_error"

# `claude_otel.error.category`: whose problem a failure is (the table in `claude_otel._errors`).
CATEGORY_CALLER_ERROR: Final = "caller_error"
CATEGORY_BILLING: Final = "billing"
CATEGORY_RATE_LIMITED: Final = "rate_limited"
CATEGORY_SPEND_LIMIT: Final = "spend_limit"
CATEGORY_OVERLOADED: Final = "overloaded"
CATEGORY_PLATFORM_ERROR: Final = "platform_error"
CATEGORY_GATEWAY_TIMEOUT: Final = "gateway_timeout"
CATEGORY_TIMEOUT: Final = "timeout"
CATEGORY_CONNECTION: Final = "connection"

ATTRIBUTION_PREFIX: Final = "claude_otel."
"""What the application's attribution keys (`claude_otel.attributes(feature=...)`) are prefixed with, as baggage
and as span and metric attributes (`claude_otel.feature`)."""

SPAN_NAME_BATCHES_PREFIX: Final = "anthropic.messages."
"""Message Batches spans are named as the SDK names its own: this and the operation (`anthropic.messages.batches.create`)."""

# --- The request log (`claude_otel._request_log`) ------------------------------------------------------------------
EVENT_NAME: Final = "event.name"
EVENT_REQUEST: Final = "claude_otel.request"
"""The request log's record: one per call, a line of the `claude_otel` logger and a log record of the logs signal."""
CLAUDE_OTEL_OPERATION: Final = "claude_otel.operation"
CLAUDE_OTEL_OUTCOME: Final = "claude_otel.outcome"
"""`ok`, `failed`, or how a stream's reading ended."""
CLAUDE_OTEL_LATENCY: Final = "claude_otel.latency"
"""Seconds, from the call's start to its end."""

# --- Metrics (`claude_otel._metrics`) -----------------------------------------------------------------------------
METRIC_INFERENCE_DURATION: Final = "gen_ai.client.inference.duration"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.inference.time_to_first_chunk"
METRIC_INPUT_TOKENS: Final = "gen_ai.client.inference.operation.input_tokens"
METRIC_OUTPUT_TOKENS: Final = "gen_ai.client.inference.operation.output_tokens"
METRIC_USAGE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.input_tokens"
METRIC_USAGE_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.output_tokens"
METRIC_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_read.input_tokens"
METRIC_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.client.inference.usage.cache_write.input_tokens"
METRIC_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.client.inference.usage.reasoning.output_tokens"
METRIC_LEGACY_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_LEGACY_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_COST: Final = "claude_otel.cost"
METRIC_CACHE_SAVINGS: Final = "claude_otel.cost.cache_savings"
METRIC_CALLS: Final = "claude_otel.calls"
METRIC_TOOL_CALLS: Final = "claude_otel.tool_calls"
METRIC_ATTEMPTS: Final = CLAUDE_OTEL_ATTEMPTS  # One name: the counter of attempts, and the span's count of them.
METRIC_BATCH_RESULTS: Final = CLAUDE_OTEL_BATCH_RESULTS  # One name, as the attempts'.
METRIC_RATE_LIMIT_REMAINING: Final = "claude_otel.rate_limit.remaining"
METRIC_RATE_LIMIT_LIMIT: Final = "claude_otel.rate_limit.limit"
GEN_AI_TOKEN_MODALITY: Final = "gen_ai.token.modality"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
"""On `gen_ai.client.token.usage` (`legacy_metrics`): `input` or `output`."""
