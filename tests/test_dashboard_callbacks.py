"""Dashboard callbacks called as plain functions, on a real small run written by the engine.

The run (2 shipped scenarios x 3 replications, short horizon) is made once per module. Each test
points the dashboard's data source at it (or at a damaged copy) with ``data.configure``.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from dash import no_update
from plotly.utils import PlotlyJSONEncoder

import sim.formatting as fmt
from dashboard import components as cx
from dashboard import data, shell
from dashboard import figures as fg
from dashboard import whatif as wi
from dashboard.app import create_app
from dashboard.pages import compare, cost, ltv, peak, retention
from dashboard.pages import whatif as whatif_page
from sim.experiment import run_experiment, with_horizon
from sim.loader import load_scenario
from sim.results import METRICS
from sim.store import list_runs, load_run, write_run
from sim.summary import paired_differences

ROOT = Path(__file__).resolve().parents[1]
HORIZON_DAYS = 95  # from 1 September: two complete cohort months and the Black Friday week
REPS = 3
SEED = 11


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A runs folder holding one real run, and a copy of the shipped scenario files."""
    root = tmp_path_factory.mktemp("dashboard")
    scen_dir = root / "scenarios"
    scen_dir.mkdir()
    for p in (ROOT / "scenarios").glob("*.yaml"):
        shutil.copy(p, scen_dir / p.name)
    scenarios = [
        with_horizon(load_scenario(scen_dir / f"{name}.yaml"), HORIZON_DAYS)
        for name in ("baseline", "ai_assistant")
    ]
    results = run_experiment(scenarios, REPS, SEED, workers=2)
    runs_dir = root / "runs"
    path = write_run(runs_dir, results, {s.name: s for s in scenarios}, SEED, REPS, {"wall_s": 0.0})
    return {"root": root, "runs": runs_dir, "scenarios": scen_dir, "run_id": path.name}


@pytest.fixture
def src(world: dict[str, Any]) -> Iterator[data.DataSource]:
    yield data.configure(world["runs"], world["scenarios"])


@pytest.fixture
def keys(world: dict[str, Any]) -> list[str]:
    return [data.make_key(world["run_id"], s) for s in ("baseline", "ai_assistant")]


def walk(component: Any) -> Iterator[Any]:
    """Every Dash component in a tree (lists and None allowed)."""
    if component is None or isinstance(component, str | int | float):
        return
    if isinstance(component, list | tuple):
        for c in component:
            yield from walk(c)
        return
    yield component
    yield from walk(getattr(component, "children", None))


def props(component: Any) -> dict[str, Any]:
    return component.to_plotly_json()["props"]


def cells(tree: Any, kind: str) -> dict[tuple[str, str], Any]:
    """KPI table cells of a kind ("value" or "diff") by (metric, scenario)."""
    out = {}
    for c in walk(tree):
        p = props(c)
        if p.get("data-kind") == kind and "data-metric" in p:
            out[(p["data-metric"], p["data-scenario"])] = c
    return out


def texts(cell: Any) -> list[str]:
    return [c.children for c in cell.children]


def text_of(tree: Any) -> str:
    """The JSON Dash would send for a component tree (to search its text)."""
    return json.dumps(tree, cls=PlotlyJSONEncoder)


def messages(tree: Any) -> list[Any]:
    return [c for c in walk(tree) if cx.MESSAGE_CLASS in (props(c).get("className") or "").split()]


# ----------------------------------------------------------------------------- compare


def test_compare_table_shows_the_stored_summary_and_paired_differences(
    world: dict[str, Any], src: data.DataSource, keys: list[str]
) -> None:
    body = compare.update_compare(keys, keys[0], "all")
    stored = load_run(world["runs"], world["run_id"])
    summary = stored.summary.set_index(["scenario", "metric"])
    diffs = paired_differences(stored.kpis, "baseline").set_index(["scenario", "metric"])
    values, dcells = cells(body, "value"), cells(body, "diff")
    assert len(values) == 2 * stored.summary["metric"].nunique()
    for (metric, scen), cell in values.items():
        row = summary.loc[(scen, metric)]
        assert texts(cell)[0] == fmt.format_value(row["mean"], METRICS[metric].unit)
    assert {s for _, s in dcells} == {"ai_assistant"}  # no difference column for the baseline
    checked = 0
    for (metric, scen), cell in dcells.items():
        d = diffs.loc[(scen, metric)]
        unit, better = METRICS[metric].unit, METRICS[metric].better
        assert texts(cell)[0] == fmt.format_diff(d["mean_diff"], unit)
        assert (
            texts(cell)[1] == fmt.format_interval(d["ci_low"], d["ci_high"], unit, diff=True)
            or d["n"] < 2
        )
        expected = fmt.verdict(d["mean_diff"], d["ci_low"], d["ci_high"], better)
        assert props(cell)["data-verdict"] == expected
        assert props(cell)["style"] == fg.VERDICT_STYLE[expected]
        checked += expected in (fmt.BETTER, fmt.WORSE)
    assert checked > 0  # the AI assistant changes something significantly (containment at least)
    assert props(dcells[("containment_rate", "ai_assistant")])["data-verdict"] == fmt.BETTER


def test_headline_cards(src: data.DataSource, keys: list[str]) -> None:
    body = compare.update_compare(keys, keys[0], "headline")
    lines = [c for c in walk(body) if props(c).get("className") == "cx-card-line"]
    metrics = {props(c).get("data-metric") for c in lines}
    assert metrics == set(fg.HEADLINE_METRICS)


def test_csv_export_matches_the_paired_differences(
    world: dict[str, Any], src: data.DataSource, keys: list[str]
) -> None:
    out = compare.export_csv(1, keys, keys[0], "all")
    assert out["filename"] == compare.CSV_NAME
    csv = pd.read_csv(io.StringIO(out["content"]))
    stored = load_run(world["runs"], world["run_id"])
    diffs = paired_differences(stored.kpis, "baseline").set_index("metric")
    ai = csv[csv["scenario"] == "ai_assistant"].set_index("metric")
    both = ai.index.intersection(diffs.index)
    assert len(both) == stored.summary["metric"].nunique()
    pd.testing.assert_series_equal(
        ai.loc[both, "diff_mean"], diffs.loc[both, "mean_diff"], check_names=False, rtol=1e-9
    )
    assert set(csv["run_id"]) == {world["run_id"]}
    assert compare.export_csv(1, [], None, "all") is no_update


def test_no_runs_gives_the_command_to_create_some(tmp_path: Path, world: dict[str, Any]) -> None:
    data.configure(tmp_path / "runs", world["scenarios"])
    body = compare.update_compare([], None, "headline")
    (msg,) = messages(body)
    text = text_of(msg)
    assert "No runs yet" in text
    assert f"--out {tmp_path / 'runs'}" in text and "cxsim run " in text and "baseline.yaml" in text
    for page_body in (
        retention.update_retention([], None),
        cost.update_cost([], None),
        peak.update_peak([], None, None, "bf"),
    ):
        assert messages(page_body)
    assert shell.selection_state(data.source(), [], None)["options"] == []


def test_nothing_selected_and_unknown_keys_are_messages(
    src: data.DataSource, keys: list[str]
) -> None:
    (msg,) = messages(compare.update_compare([], None, "headline"))
    assert "Pick at least one" in text_of(msg)
    for bad in ("../../etc/passwd::x", "20991231-000000-ffffff::baseline", 42):
        body = compare.update_compare([bad], None, "headline")
        (msg,) = messages(body)
        assert "cx-error" in props(msg)["className"]


def damaged_copy(world: dict[str, Any], tmp_path: Path, how: str) -> Path:
    runs = tmp_path / "runs"
    shutil.copytree(world["runs"] / world["run_id"], runs / world["run_id"])
    folder = runs / world["run_id"]
    if how == "corrupt":
        (folder / "daily.parquet").unlink()
    else:
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["format_version"] = 99
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return runs


@pytest.mark.parametrize(
    ("how", "status", "problem"),
    [("corrupt", "corrupt", "daily.parquet is missing"), ("old", "incompatible", "format 99")],
)
def test_bad_run_folder_is_listed_greyed_with_its_problem(
    world: dict[str, Any], tmp_path: Path, keys: list[str], how: str, status: str, problem: str
) -> None:
    runs = damaged_copy(world, tmp_path, how)
    src = data.configure(runs, world["scenarios"])
    (choice,) = src.choices()
    assert choice.disabled and problem in choice.problem and status in choice.label
    assert choice.option()["disabled"] is True
    state = shell.selection_state(src, keys, keys[0])
    assert state["value"] == [] and "cannot be read" in state["note"]
    body = compare.update_compare(keys, keys[0], "headline")
    (msg,) = messages(body)
    assert problem in text_of(msg)
    table = cx.runs_table(src.runs())
    bad_rows = [c for c in walk(table) if props(c).get("className") == "cx-run-bad"]
    assert len(bad_rows) == 1 and problem in props(bad_rows[0])["title"]


def test_invalid_scenario_file_shows_its_validation_error(
    world: dict[str, Any], tmp_path: Path
) -> None:
    scen = tmp_path / "scenarios"
    shutil.copytree(world["scenarios"], scen)
    (scen / "broken.yaml").write_text("extends: baseline.yaml\nname: broken\nhorizon_days: -5\n")
    src = data.configure(world["runs"], scen)
    broken = next(f for f in src.scenario_files() if f.name == "broken")
    assert not broken.ok and "horizon_days" in broken.message
    layout = whatif_page.layout()
    text = text_of(layout)
    assert "broken.yaml fails validation" in text and "horizon_days" in text
    listing = json.dumps(cx.scenario_files_list(src.scenario_files()).to_plotly_json(), default=str)
    assert "horizon_days" in listing
    with pytest.raises(data.SelectionError, match="horizon_days"):
        src.scenario_file("broken")
    with pytest.raises(data.SelectionError):
        src.scenario_file("../baseline")


# ----------------------------------------------------------------------------- other pages


def test_retention_cost_ltv_and_peak_pages_show_charts(
    world: dict[str, Any], src: data.DataSource, keys: list[str]
) -> None:
    for body, graph_id in (
        (retention.update_retention(keys, keys[0]), "retention-graph"),
        (cost.update_cost(keys, keys[0]), "cost-graph"),
        (ltv.update_ltv(keys, keys[0], None)[0], "ltv-graph"),
        (
            ltv.update_roi(keys, keys[0], "ai_assistant", list(fg.PROGRAM_CATEGORIES)),
            "ltv-roi-graph",
        ),
    ):
        graphs = [c for c in walk(body) if props(c).get("id") == graph_id]
        assert len(graphs) == 1, graph_id
        assert graphs[0].config["displaylogo"] is False  # the mode bar (PNG export) stays on
        assert not [m for m in messages(body) if "cx-error" in props(m)["className"]]


def test_ltv_payback_marker_is_the_first_month_margin_covers_cac(
    world: dict[str, Any], src: data.DataSource, keys: list[str]
) -> None:
    stored = load_run(world["runs"], world["run_id"])
    curves = fg.ltv_curves(stored.cohorts)
    table = fg.payback_table(curves, ["baseline", "ai_assistant"]).set_index("scenario")
    for scen in ("baseline", "ai_assistant"):
        d = curves[curves["scenario"] == scen].sort_values("month")
        hits = d[d["mean"] >= d["cac"]]
        expected = int(hits["month"].iloc[0]) if len(hits) else None
        got = table.loc[scen, "payback_month"]
        assert (None if pd.isna(got) else int(got)) == expected


def test_roi_page_numbers(world: dict[str, Any], src: data.DataSource, keys: list[str]) -> None:
    comp = src.comparison(keys, keys[0])
    res = fg.program_roi(comp.daily, "ai_assistant", "baseline", ["automation"])
    assert res.paired and res.n == REPS
    assert res.program_cost.mean > 0  # the assistant costs money
    body = ltv.update_roi(keys, keys[0], "ai_assistant", ["automation", "not_a_category"])
    cost_cell = next(c for c in walk(body) if props(c).get("id") == "ltv-roi-cost")
    assert cost_cell.children.startswith(fmt.format_diff(res.program_cost.mean, "USD"))
    variants = ltv.update_ltv(keys, keys[0], "nope")
    assert (
        variants[1] == [{"label": "ai_assistant", "value": "ai_assistant"}]
        and variants[2] == "ai_assistant"
    )


def test_peak_page_zooms_to_black_friday(src: data.DataSource, keys: list[str]) -> None:
    assert peak.peak_scenarios(keys, keys[0], None) == (
        [
            {"label": "baseline", "value": "baseline"},
            {"label": "ai_assistant", "value": "ai_assistant"},
        ],
        "baseline",
    )
    body = peak.update_peak(keys, keys[0], "ai_assistant", "bf")
    assert not messages(body)
    fig = next(c for c in walk(body) if props(c).get("id") == "peak-graph").figure
    assert fig.layout.xaxis5.rangeslider.visible
    assert [pd.Timestamp(x) for x in fig.layout.xaxis.range] == [
        pd.Timestamp("2026-11-23"),
        pd.Timestamp("2026-12-01"),
    ]
    targets = {t.name: t.y[0] for t in fig.data if (t.name or "").endswith(" target")}
    sla = (
        load_scenario(ROOT / "scenarios" / "ai_assistant.yaml").contacts.channels["chat"].sla_target
    )
    assert targets["chat target"] == pytest.approx(sla)
    body = peak.update_peak(
        keys, keys[0], "baseline", "all"
    )  # whole horizon: daily, with the button
    fig = next(c for c in walk(body) if props(c).get("id") == "peak-graph").figure
    assert fig.layout.updatemenus[0].buttons[0].label == "Black Friday week"


# ----------------------------------------------------------------------------- shell


def test_selection_state(src: data.DataSource, keys: list[str]) -> None:
    st = shell.selection_state(src, [*keys, "bogus"], None)
    assert st["value"] == keys and st["baseline"] == keys[0]  # "baseline" by name
    st = shell.selection_state(src, [keys[1]], keys[0])
    assert st["baseline"] == keys[1]  # the baseline must be selected
    st = shell.selection_state(
        src, [keys[1]], keys[1], added={"keys": [keys[0]], "baseline": keys[0]}
    )
    assert st["value"] == [keys[1], keys[0]] and st["baseline"] == keys[0]
    assert [o["label"] for o in st["baseline_options"]] == ["ai_assistant", "baseline"]


def test_labels_tell_runs_apart() -> None:
    a = data.Choice("k1", "20260101-000000-aaaaaa", "baseline", "")
    b = data.Choice("k2", "20260102-000000-bbbbbb", "baseline", "")
    c = data.Choice("k3", "20260102-000000-bbbbbb", "alerts", "")
    assert data.display_labels([a, b, c]) == ["baseline · aaaaaa", "baseline · bbbbbb", "alerts"]


# ----------------------------------------------------------------------------- what-if


def form(**overrides: Any) -> dict[str, Any]:
    base = {
        "scenario": "baseline",
        "name": "baseline_more_chat",
        **{f"staff_{p}": 1.0 for p in wi.STAFFED_POOLS},
        "containment": 1.0,
        "switches": ["free_returns"],
        "loyalty": "none",
        "reps": 2,
        "horizon": 14,
        "seed": SEED,
        "include_base": ["yes"],
    }
    return {**base, **overrides}


def values(f: dict[str, Any]) -> list[Any]:
    return [f[k] for k in whatif_page.FORM_FIELDS]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"name": "bad name!"}, "Name"),
        ({"reps": 0}, "Replications"),
        ({"horizon": 5000}, "Horizon"),
        ({"staff_chat": "lots"}, "chat staffing"),
        ({"loyalty": "gold"}, "loyalty"),
        ({"switches": ["rm -rf"]}, "switch"),
        ({"scenario": None}, "Choose a scenario"),
    ],
)
def test_whatif_form_is_checked(override: dict[str, Any], message: str) -> None:
    with pytest.raises(wi.WhatifError, match=message):
        wi.parse_request(form(**override))


def test_apply_levers(src: data.DataSource) -> None:
    raw_path = src.scenario_file("baseline").path
    from sim.loader import resolve_raw

    raw = resolve_raw(raw_path)
    base = load_scenario(raw_path)
    levers = wi.Levers(
        name="edited",
        staffing={"chat": 1.5, "email": 1.0},
        automation=True,
        containment_multiplier=2.0,
        delay_alerts=True,
        free_returns=False,
        exchange_first=True,
        loyalty="tiers",
    )
    edited = wi.apply_levers(raw, levers, wi.program_templates(src.scenario_files()))
    assert raw == resolve_raw(raw_path)  # the input is not modified
    from sim.loader import scenario_from_dict

    s = scenario_from_dict(edited)
    assert s.name == "edited" and "chat staffing x1.5" in s.description
    for p0, p1 in zip(
        base.contacts.channels["chat"].staffing, s.contacts.channels["chat"].staffing, strict=True
    ):
        assert p1.agents_by_hour == pytest.approx([a * 1.5 for a in p0.agents_by_hour])
    assert s.contacts.channels["email"].staffing == base.contacts.channels["email"].staffing
    assert s.automation.enabled and s.notifications.delay_alerts
    assert not s.returns.free_returns and s.returns.exchange_first
    for reason, cfg in s.contacts.reasons.items():
        assert cfg.containment == pytest.approx(
            min(1.0, 2 * base.contacts.reasons[reason].containment)
        )
    assert s.loyalty.program is not None and s.loyalty.program.type == "tiers"
    shipped = load_scenario(ROOT / "scenarios" / "loyalty_tiers.yaml").loyalty.program
    assert s.loyalty.program == shipped  # borrowed from the shipped tiers scenario
    same = wi.apply_levers(raw, wi.current_levers(base, "same"))
    assert {k: v for k, v in same.items() if k not in ("name", "description")} == {
        k: v for k, v in raw.items() if k not in ("name", "description")
    }


def load_scenario_text(folder: Path, text: str) -> Any:
    path = folder / "check.yaml"
    path.write_text(text)
    return load_scenario(path)


def test_whatif_yaml_download_validates(src: data.DataSource, tmp_path: Path) -> None:
    f = form(
        staff_chat=1.25,
        switches=["automation", "delay_alerts", "free_returns"],
        loyalty="membership",
    )
    out, msg = whatif_page.download_yaml(1, *values(f))
    assert out["filename"] == "baseline_more_chat.yaml"
    path = tmp_path / out["filename"]
    path.write_text(out["content"])
    s = load_scenario(path)
    assert s.name == "baseline_more_chat" and s.automation.enabled
    assert s.loyalty.program is not None and s.loyalty.program.type == "membership"
    assert s.horizon_days == load_scenario(ROOT / "scenarios" / "baseline.yaml").horizon_days
    assert "extends" not in yaml.safe_load(out["content"])
    cli = subprocess.run(
        [sys.executable, "-m", "sim.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    bad, msg = whatif_page.download_yaml(1, *values(form(name="baseline")))
    assert bad is no_update and "new name" in text_of(msg)
    same, _msg = whatif_page.download_yaml(1, *values(form(name="baseline", include_base=[])))
    assert (
        load_scenario_text(tmp_path, same["content"]).name == "baseline"
    )  # running the file as is


def test_whatif_defaults_follow_the_chosen_scenario(src: data.DataSource) -> None:
    out = dict(
        zip(
            ["name", "switches", "loyalty", "containment"],
            whatif_page.whatif_defaults("ai_assistant"),
            strict=False,
        )
    )
    assert out["name"] == "ai_assistant_whatif"
    assert "automation" in out["switches"] and out["loyalty"] == "none"
    res = whatif_page.whatif_defaults("loyalty_tiers")
    assert res[2] == "tiers"
    horizon, seed = res[-3], res[-2]
    assert horizon == 91  # to the end of the Black Friday week of 2026
    assert seed == SEED  # the newest run's seed
    assert "Choose one" in whatif_page.whatif_defaults("../../etc/passwd")[-1]


def test_run_whatif_writes_a_run_that_joins_the_selection(
    world: dict[str, Any], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(world["runs"], runs)
    src = data.configure(runs, world["scenarios"])
    progress: list[tuple[str, str, str]] = []
    result, done = whatif_page.run_whatif(progress.append, 1, *values(form(staff_chat=1.5)))
    assert "finished" in text_of(result)
    assert progress[0][0] == "0" and progress[-1][:2] == ("4", "4")
    new = [i for i in list_runs(runs) if i.run_id != world["run_id"]]
    assert len(new) == 1 and new[0].scenarios == ("baseline", "baseline_more_chat")
    assert done["keys"] == [data.make_key(new[0].run_id, s) for s in new[0].scenarios]
    assert whatif_page.forward_added(done) == done and whatif_page.forward_added(None) is no_update
    old = [data.make_key(world["run_id"], "baseline")]
    st = shell.selection_state(src, old, old[0], added=done, refresh=True)
    assert st["value"] == [*old, *done["keys"]] and st["baseline"] == done["baseline"]
    body = compare.update_compare(st["value"], st["baseline"], "headline")
    stored = load_run(runs, new[0].run_id).summary.set_index(["scenario", "metric"])
    label = "baseline_more_chat"
    got = texts(cells(body, "value")[("cost_to_serve_per_order", label)])[0]
    assert got == fmt.format_value(
        stored.loc[(label, "cost_to_serve_per_order"), "mean"], "USD/order"
    )
    assert props(cells(body, "diff")[("cost_to_serve_per_order", label)])["title"].endswith(
        f"(paired, n={2})"
    )
    # 14 days from 1 September: the Black Friday week is outside; the page says so and shows it all
    body = peak.update_peak(st["value"], st["baseline"], label, "bf")
    assert "outside this scenario's horizon" in text_of(messages(body)[0])
    assert any(props(c).get("id") == "peak-graph" for c in walk(body))


def test_run_whatif_failure_is_a_message(src: data.DataSource) -> None:
    result, done = whatif_page.run_whatif(lambda _p: None, 1, *values(form(name="baseline")))
    assert done is no_update
    assert "cx-error" in props(result)["className"] and "new name" in text_of(result)


# ----------------------------------------------------------------------------- the app


def test_app_serves_pages_and_callbacks_twice_in_one_process(
    world: dict[str, Any], keys: list[str]
) -> None:
    for _ in range(2):  # every app built in the process gets the callbacks
        app = create_app(world["runs"], world["scenarios"], cache_dir=world["root"] / "cache")
        client = app.server.test_client()
        assert client.get("/").status_code == 200
        deps = client.get("/_dash-dependencies").json
        outputs = {d["output"] for d in deps}
        assert "compare-body.children" in outputs
        assert any("whatif-result.children" in o for o in outputs)
        resp = client.post(
            "/_dash-update-component",
            json={
                "output": "compare-body.children",
                "outputs": {"id": "compare-body", "property": "children"},
                "inputs": [
                    {"id": "shell-selection", "property": "value", "value": keys},
                    {"id": "shell-baseline", "property": "value", "value": keys[0]},
                    {"id": "compare-group", "property": "value", "value": "headline"},
                ],
                "changedPropIds": ["shell-selection.value"],
                "state": [],
            },
        )
        assert resp.status_code == 200
        assert "compare-kpi-table" in resp.get_data(as_text=True)
    assert not any(p.name.startswith(".") and p.name != ".cache" for p in world["runs"].iterdir())


@pytest.mark.parametrize("file", sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml")))
@pytest.mark.parametrize("loyalty", list(wi.LOYALTY_TYPES))
def test_every_shipped_scenario_exports_valid_yaml(
    src: data.DataSource, tmp_path: Path, file: str, loyalty: str
) -> None:
    f = form(
        scenario=file,
        name=f"{file}_edit",
        loyalty=loyalty,
        staff_email=0.8,
        containment=1.5,
        switches=["automation", "exchange_first"],
    )
    out, _msg = whatif_page.download_yaml(1, *values(f))
    s = load_scenario_text(tmp_path, out["content"])
    assert s.name == f"{file}_edit"
    assert (s.loyalty.program.type if s.loyalty.program else "none") == loyalty
