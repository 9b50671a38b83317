"""End-to-end: the dashboard in a real headless Chromium, against a real run.

Loads the Compare page, picks scenarios and a baseline in the shared selector, checks every number
in the KPI table against the stored summary and paired differences, downloads the CSV, saves the
README screenshot (dashboard/screenshot.png), runs a what-if and finds its numbers in the table, zooms the
peak page to the Black Friday week, and sees a damaged run folder greyed out with its problem.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import sim.formatting as fmt
from dashboard import figures as fg
from dashboard.data import make_key
from sim.results import METRICS
from sim.store import list_runs, load_run
from sim.summary import paired_differences

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "dashboard" / "screenshot.png"
WHATIF_TIMEOUT_MS = 180_000


def pick(page: Any, dropdown: str, keys: list[str], multi: bool = True) -> None:
    """Choose options of a Dash dropdown by value, through its UI."""
    page.click(f"#{dropdown}")
    listbox = page.locator('[role="listbox"]')
    if multi:
        page.get_by_role("button", name="Deselect All").click()
    for key in keys:
        listbox.locator('[role="option"]', has=page.locator(f'input[value="{key}"]')).click()
        if not multi:
            break
    page.keyboard.press("Escape")


def table_cells(page: Any, kind: str) -> dict[tuple[str, str], tuple[str, str]]:
    """KPI table cells as shown: (metric, scenario) -> (main text, interval text)."""
    rows = page.eval_on_selector_all(
        f'#compare-kpi-table td[data-kind="{kind}"]',
        """tds => tds.map(td => [td.dataset.metric, td.dataset.scenario,
              td.querySelector('.cx-v').innerText, td.querySelector('.cx-ci').innerText,
              td.dataset.verdict || ''])""",
    )
    return {(m, s): (v, ci, verdict) for m, s, v, ci, verdict in rows}


def wait_for_table_with(page: Any, scenarios: list[str]) -> None:
    page.wait_for_function(
        """names => { const t = document.querySelector('#compare-kpi-table');
             if (!t) return false;
             const shown = new Set([...t.querySelectorAll('td[data-kind=value]')].map(td => td.dataset.scenario));
             return names.every(n => shown.has(n)) && shown.size === names.length; }""",
        arg=scenarios,
    )


def test_compare_page_numbers_match_the_stored_run(
    page: Any, server: str, e2e_world: dict[str, Any]
) -> None:
    run_id = e2e_world["run_id"]
    page.goto(server + "/")
    page.wait_for_selector("#compare-kpi-table")
    chosen = ["baseline", "ai_assistant", "proactive_alerts"]
    pick(page, "shell-selection", [make_key(run_id, s) for s in chosen])
    pick(page, "shell-baseline", [make_key(run_id, "baseline")], multi=False)
    page.get_by_label("All metrics").check()
    wait_for_table_with(page, chosen)

    stored = load_run(e2e_world["runs"], run_id)
    summary = stored.summary.set_index(["scenario", "metric"])
    kpis = stored.kpis[stored.kpis["scenario"].isin(chosen)]
    diffs = paired_differences(kpis, "baseline").set_index(["scenario", "metric"])
    values = table_cells(page, "value")
    assert len(values) == len(chosen) * stored.summary["metric"].nunique()
    for (metric, scen), (text, ci, _) in values.items():
        row = summary.loc[(scen, metric)]
        unit = METRICS[metric].unit
        assert text == fmt.format_value(row["mean"], unit), (metric, scen)
        if row["n"] >= 2:
            assert ci == fmt.format_interval(row["ci_low"], row["ci_high"], unit), (metric, scen)
    shown_diffs = table_cells(page, "diff")
    assert {s for _, s in shown_diffs} == {"ai_assistant", "proactive_alerts"}
    coloured = 0
    for (metric, scen), (text, _ci, verdict) in shown_diffs.items():
        d = diffs.loc[(scen, metric)]
        assert text == fmt.format_diff(d["mean_diff"], METRICS[metric].unit), (metric, scen)
        assert verdict == fmt.verdict(
            d["mean_diff"], d["ci_low"], d["ci_high"], METRICS[metric].better
        )
        coloured += verdict in (fg.BETTER, fg.WORSE)
    assert coloured > 0
    # a "better" cell really is green on screen
    cell = page.locator('#compare-kpi-table td[data-kind="diff"][data-verdict="better"]').first
    assert (
        cell.evaluate("td => getComputedStyle(td).backgroundColor") == "rgb(218, 251, 225)"
    )  # #dafbe1

    # the CSV export holds the same differences
    with page.expect_download() as dl:
        page.click("#compare-export")
    csv = pd.read_csv(io.StringIO(Path(dl.value.path()).read_text()))
    ai = csv[csv["scenario"] == "ai_assistant"].set_index("metric")["diff_mean"]
    expected = diffs.loc["ai_assistant"]["mean_diff"]
    pd.testing.assert_series_equal(
        ai.sort_index(), expected.reindex(ai.index).sort_index(), check_names=False
    )

    # the picture for the README: the headline view of the comparison
    page.get_by_label("Headline").check()
    page.wait_for_function(
        "() => document.querySelectorAll('#compare-kpi-table tbody tr').length < 30"
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 20_000


def test_whatif_runs_in_the_background_and_joins_the_comparison(
    page: Any, server: str, e2e_world: dict[str, Any]
) -> None:
    before = {i.run_id for i in list_runs(e2e_world["runs"])}
    page.goto(server + "/what-if")
    page.wait_for_function(
        "() => document.querySelector('#whatif-name')?.value === 'baseline_whatif'"
    )
    page.fill("#whatif-name", "e2e_more_chat")
    page.fill("#whatif-staff-chat", "1.5")
    page.fill("#whatif-reps", "2")
    page.fill("#whatif-horizon", "30")
    page.get_by_label("Proactive delay alerts").check()
    page.locator("#whatif-horizon").press("Tab")
    page.click("#whatif-run")

    # while it runs: a progress indicator, the button disabled, and the page still answers
    page.wait_for_selector("#whatif-progress-box", state="visible")
    assert page.locator("#whatif-run").is_disabled()
    page.click("#whatif-yaml")
    page.wait_for_selector("#whatif-yaml-msg .cx-message")
    assert "cxsim validate e2e_more_chat.yaml" in page.inner_text("#whatif-yaml-msg")

    page.wait_for_function(
        "() => /finished/.test(document.querySelector('#whatif-result')?.innerText || '')",
        timeout=WHATIF_TIMEOUT_MS,
    )
    assert page.locator("#whatif-progress-box").is_hidden()
    new = [i for i in list_runs(e2e_world["runs"]) if i.run_id not in before]
    assert len(new) == 1 and new[0].scenarios == ("baseline", "e2e_more_chat")
    run_id = new[0].run_id
    page.wait_for_function(  # the new scenario joins the shared selection
        "label => document.querySelector('#shell-selection').innerText.includes(label)",
        arg=f"e2e_more_chat — run {run_id}",
    )

    page.click("text=Open Compare")
    label_base = f"baseline · {run_id.rsplit('-', 1)[-1]}"
    page.wait_for_selector('#compare-kpi-table td[data-scenario="e2e_more_chat"]')
    stored = load_run(e2e_world["runs"], run_id)
    summary = stored.summary.set_index(["scenario", "metric"])
    values = table_cells(page, "value")
    checked = 0
    for (metric, scen), (text, _ci, _v) in values.items():
        if scen == "e2e_more_chat":
            assert text == fmt.format_value(
                summary.loc[(scen, metric), "mean"], METRICS[metric].unit
            )
            checked += 1
    assert checked >= 10
    diffs = paired_differences(stored.kpis, "baseline").set_index(["scenario", "metric"])
    d = diffs.loc[("e2e_more_chat", "service_level_chat")]
    shown = table_cells(page, "diff")[("service_level_chat", "e2e_more_chat")]
    assert shown[0] == fmt.format_diff(d["mean_diff"], "share")
    # the what-if's own unedited copy became the baseline (paired, same seeds)
    assert page.inner_text("#shell-baseline") == label_base


def test_peak_page_zooms_to_black_friday(page: Any, server: str, e2e_world: dict[str, Any]) -> None:
    page.goto(server + "/peak")
    page.wait_for_selector("#peak-graph .main-svg")
    pick(
        page, "shell-selection", [make_key(e2e_world["run_id"], "baseline")]
    )  # 91 days: Black Friday is in
    page.get_by_label("Whole horizon").check()
    page.wait_for_selector("#peak-graph .updatemenu-button")
    page.locator("#peak-graph .updatemenu-button", has_text="Black Friday week").click()
    page.wait_for_function(
        "() => { const r = document.querySelector('#peak-graph .js-plotly-plot').layout.xaxis.range;"
        " return String(r[0]).startsWith('2026-11-23'); }"
    )
    rng = page.evaluate(
        "() => document.querySelector('#peak-graph .js-plotly-plot').layout.xaxis.range"
    )
    assert str(rng[1]).startswith("2026-12-01")
    assert page.locator("#peak-graph .modebar").count() == 1  # Plotly's mode bar: PNG export


def test_damaged_run_folder_is_greyed_with_its_problem(
    page: Any, server: str, e2e_world: dict[str, Any]
) -> None:
    runs = e2e_world["runs"]
    bad = runs / "20000101-000000-abcdef"
    shutil.copytree(runs / e2e_world["run_id"], bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["run_id"] = bad.name
    (bad / "manifest.json").write_text(json.dumps(manifest))
    (bad / "kpis.parquet").unlink()
    try:
        page.goto(server + "/")
        page.wait_for_selector("#compare-kpi-table")
        page.click("#shell-refresh")
        page.wait_for_function(
            "() => /cannot be read/.test(document.querySelector('#shell-note').innerText)"
        )
        page.click("#shell-selection")
        option = page.locator('[role="option"]', has_text=f"run {bad.name} is corrupt")
        assert option.count() == 1
        assert "kpis.parquet is missing" in option.inner_text()
        assert (
            option.get_attribute("aria-disabled") == "true" or option.locator("input").is_disabled()
        )
        page.keyboard.press("Escape")
        row = page.locator("#compare-runs tr.cx-run-bad")
        assert re.search("corrupt: kpis.parquet is missing", row.inner_text())
    finally:
        shutil.rmtree(bad)
