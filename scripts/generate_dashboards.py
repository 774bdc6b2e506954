#!/usr/bin/env python3
"""Renders the Grafana dashboards `dashboards/<name>.json` from their definition in `claude_otel._tools.dashboards`.

    python scripts/generate_dashboards.py          # writes the files
    python scripts/generate_dashboards.py --check  # exits 1 when a committed file differs from its source

Built with grafana-foundation-sdk (pinned in the `test` extra: another release may render other JSON), a
development dependency only: claude_otel never imports it. The JSON is for file provisioning (the stack's Grafana
mounts `dashboards/`): a fixed `uid`, no numeric `id`, a `datasource` variable (type `datasource`, query `prometheus`)
that every PromQL panel uses, and the Jaeger data source by its provisioned uid `jaeger` for trace searches.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models

from claude_otel._tools import dashboards as d

OUT = Path(__file__).resolve().parent.parent / "dashboards"
PROMETHEUS = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
JAEGER = models.DataSourceRef(type_val="jaeger", uid="jaeger")
_HEIGHT = {"stat": 4, "bars": 8, "timeseries": 8, "traces": 10}


class _JaegerSearch(cogvariants.Dataquery):
    """A Jaeger data source query: the SDK has no Jaeger builder."""

    def __init__(self, query: dict[str, object]) -> None:
        self._query = query

    def to_json(self) -> dict[str, object]:
        return {"refId": "A", "datasource": JAEGER.to_json(), **self._query}


class _Built(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, query: cogvariants.Dataquery) -> None:
        self._query = query

    def build(self) -> cogvariants.Dataquery:
        return self._query


def _targets(panel: d.Panel, instant: bool) -> list[prometheus.Dataquery]:
    targets = []
    for number, query in enumerate(panel.queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + number)).legend_format(query.legend or "__auto")
        target = target.instant() if instant else target.range()
        if panel.exemplar:
            target = target.exemplar(True)
        targets.append(target)
    return targets


def _panel(panel: d.Panel) -> Any:
    if panel.kind == "timeseries":
        built = (
            timeseries.Panel()
            .legend(common.VizLegendOptions().show_legend(True).display_mode(common_models.LegendDisplayMode.LIST).placement(common_models.LegendPlacement.BOTTOM))
            .fill_opacity(10)
            .targets(_targets(panel, instant=False))
        )
    elif panel.kind == "stat":
        built = stat.Panel().reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"])).targets(_targets(panel, instant=True))
    elif panel.kind == "bars":
        built = (
            bargauge.Panel()
            .orientation(common_models.VizOrientation.HORIZONTAL)
            .display_mode(common_models.BarGaugeDisplayMode.BASIC)
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
            .targets(_targets(panel, instant=True))
        )
    else:
        assert panel.traces is not None, panel.title
        built = table.Panel().datasource(JAEGER).with_target(_Built(_JaegerSearch(panel.traces)))
    if panel.kind != "traces":
        built = built.datasource(PROMETHEUS)
    return built.title(panel.title).description(panel.description).unit(panel.unit)


def _layout(panels: tuple[d.Panel, ...]) -> list[models.GridPos]:
    """Left to right, top to bottom on Grafana's 24 columns; a panel that does not fit starts a new row."""
    places = []
    x = y = row_height = 0
    for panel in panels:
        height = _HEIGHT[panel.kind]
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        places.append(models.GridPos(h=height, w=panel.width, x=x, y=y))
        x += panel.width
        row_height = max(row_height, height)
    return places


def _variables() -> list[Any]:
    variables: list[Any] = [dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")]
    for variable in d.VARIABLES:
        variables.append(
            dashboard.QueryVariable(variable.name)
            .label(variable.label)
            .datasource(PROMETHEUS)
            .query(f"label_values({variable.metric}, {variable.target_label})")
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(models.VariableSort.ALPHABETICAL_ASC)
        )
        if variable.multi:
            variables[-1] = (
                variables[-1]
                .multi(True)
                .include_all(True)
                .all_value(d.ALL)
                .current(models.VariableOption(selected=True, text="All", value="$__all"))
            )
    return variables


def render(source: d.Dashboard) -> dict[str, Any]:
    """The Grafana JSON of a dashboard."""
    built = (
        dashboard.Dashboard(source.title)
        .uid(source.uid)
        .description(source.description)
        .tags(["claude-otel", "anthropic", "genai"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .editable()
        .variables(_variables())
    )
    for panel, place in zip(source.panels, _layout(source.panels), strict=True):
        built = built.with_panel(_panel(panel).grid_pos(place))
    rendered = json.loads(json.dumps(built.build(), cls=JSONEncoder))
    return _without_nulls(rendered)


def _without_nulls(value: Any) -> Any:
    """The SDK writes unset fields as `null` (`"options": null`), which Grafana does not read as "unset"."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def text(source: d.Dashboard) -> str:
    """The file's content: stable, sorted JSON."""
    return json.dumps(render(source), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    OUT.mkdir(exist_ok=True)
    for source in d.DASHBOARDS:
        path = OUT / f"{source.name}.json"
        content = text(source)
        if check:
            if not path.exists() or path.read_text() != content:
                stale.append(path.name)
        else:
            path.write_text(content)
    if stale:
        print(f"stale: {', '.join(stale)}; run scripts/generate_dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
