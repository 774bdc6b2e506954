"""The `claude-otel` command's tools, apart from what an application imports: the demo, the report of the
dashboards' queries, the dashboards' definitions, reconciling with Anthropic's cost report, and API tracing's
destinations. The runtime (`claude_otel` and its other modules) never imports them; `claude_otel.__main__` does.
"""
