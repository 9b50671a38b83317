"""The calibration report: ``report.json`` (every fitted value with its interval and diagnostics,
what was kept from the base and why, the backtest's error figures, provenance) and ``report.html``
(one self-contained page: plotly.js is inlined once, no network needed).

Figures are built by pure functions (:func:`figures`) from the calibration and the backtest.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from calibration.backtest import WARMUP_WEEKS, Backtest
from calibration.results import Calibration, jsonable

__all__ = ["figures", "report_dict", "write_report"]

ACTUAL = "#1f4e79"
SIM = "#d1495b"
HOLDOUT_FILL = "rgba(120, 120, 120, 0.15)"


def report_dict(cal: Calibration, bt: Backtest | None, provenance: dict[str, Any]) -> dict[str, Any]:
    """The content of report.json."""
    return jsonable({
        "provenance": provenance,
        "history": {**cal.window.to_dict(), "timezone": provenance.get("timezone")},
        "inputs": cal.inputs,
        "fitted": [p.to_dict() for p in cal.params],
        "fitted_by_file": cal.fitted_sections,
        "kept_from_base": cal.kept,
        "warnings": cal.warnings,
        "notes": cal.notes,
        "models": cal.models,
        "backtest": bt.to_dict() if bt is not None else None,
    })


def _fmt(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _holdout(fig: go.Figure, bt: Backtest) -> None:
    w = bt.window
    if w.holdout_days:
        fig.add_vrect(x0=w.holdout_start, x1=w.end, fillcolor=HOLDOUT_FILL, line_width=0,
                      annotation_text="holdout (not fitted)", annotation_position="top left")


def _weekly_figure(bt: Backtest, key: str, title: str, unit: str) -> go.Figure | None:
    s = bt.weekly.get(key)
    if s is None:
        return None
    x = s["week_start"]
    err = bt.errors.get(key, {})
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=s["simulated_max"], line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=s["simulated_min"], fill="tonexty", fillcolor="rgba(209,73,91,0.2)", line={"width": 0},
                             name=f"simulated (min–max of {bt.reps})"))
    fig.add_trace(go.Scatter(x=x, y=s["simulated_mean"], name="simulated (mean)", line={"color": SIM, "dash": "dash"}))
    fig.add_trace(go.Scatter(x=x, y=s["actual"], name="actual", line={"color": ACTUAL}))
    _holdout(fig, bt)
    fig.update_layout(title=f"{title}: weekly MAPE fit {_pct(err.get('fit'))}, holdout {_pct(err.get('holdout'))}",
                      yaxis_title=unit, xaxis_title="week starting", height=380, margin={"t": 60, "b": 40})
    return fig


def _reasons_figure(bt: Backtest) -> go.Figure | None:
    keys = [k for k in bt.weekly if k.startswith("contacts_")]
    if not keys:
        return None
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    for i, k in enumerate(keys):
        s = bt.weekly[k]
        color = palette[i % len(palette)]
        r = k[len("contacts_"):]
        err = bt.errors[k]
        fig.add_trace(go.Scatter(x=s["week_start"], y=s["actual"], name=f"{r} actual", line={"color": color}, legendgroup=r))
        fig.add_trace(go.Scatter(x=s["week_start"], y=s["simulated_mean"], name=f"{r} simulated (MAPE {_pct(err['fit'])} / {_pct(err['holdout'])})",
                                 line={"color": color, "dash": "dash"}, legendgroup=r))
    _holdout(fig, bt)
    fig.update_layout(title="Contacts by reason, weekly (solid actual, dashed simulated; MAPE fit / holdout)", yaxis_title="contacts",
                      height=480, margin={"t": 60, "b": 40})
    return fig


def _ecdf(v: list[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.sort(np.asarray(v, dtype=float))
    return x, np.arange(1, len(x) + 1) / len(x)


def _handle_figure(cal: Calibration, bt: Backtest) -> go.Figure | None:
    act = bt.actual.get("handle_min_samples", {})
    if not act:
        return None
    fig = go.Figure()
    palette = {"chat": "#1f77b4", "email": "#2ca02c", "phone": "#d62728", "social": "#9467bd"}
    for ch, vals in act.items():
        if ch == "bot" or not vals:
            continue
        color = palette.get(ch, "#555")
        x, y = _ecdf(vals)
        fig.add_trace(go.Scatter(x=x, y=y, name=f"{ch} actual", line={"color": color}, legendgroup=ch))
        sims = [s.get("handle_min_samples", {}).get(ch, []) for s in bt.simulated]
        pooled = [v for s in sims for v in s]
        if pooled:
            xs, ys = _ecdf(pooled)
            fig.add_trace(go.Scatter(x=xs, y=ys, name=f"{ch} fitted (simulated)", line={"color": color, "dash": "dash"}, legendgroup=ch))
    fig.update_layout(title="Handle time per channel: empirical vs fitted distribution (cumulative share; log axis)",
                      xaxis={"title": "minutes", "type": "log"}, yaxis_title="share of answered contacts", height=420, margin={"t": 60, "b": 40})
    return fig


def _repeat_figure(bt: Backtest) -> go.Figure | None:
    rc = bt.actual.get("repeat_curve")
    if not rc:
        return None
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=rc["t_days"], y=rc["repeat_share"], name="actual: ordered again", line={"color": ACTUAL}))
    sims = [s["repeat_curve"] for s in bt.simulated if "repeat_curve" in s]
    if sims:
        n = min(len(s["repeat_share"]) for s in sims)
        mean = np.nanmean(np.array([s["repeat_share"][:n] for s in sims], dtype=float), axis=0)
        fig.add_trace(go.Scatter(x=sims[0]["t_days"][:n], y=mean, name="simulated", line={"color": SIM, "dash": "dash"}))
    fig.update_layout(title="Repeat purchase: share of customers first seen in the first weeks who ordered again within t days",
                      xaxis_title="days since first order", yaxis_title="share", height=380, margin={"t": 60, "b": 40})
    return fig


def _arrivals_figure(cal: Calibration) -> go.Figure | None:
    m = cal.models.get("arrivals_and_repurchase")
    acq = cal.models.get("arrivals_series")
    if not m or acq is None:
        return None
    fig = go.Figure()
    x = acq["date"]
    fig.add_trace(go.Scatter(x=x, y=acq["first_seen"], name="customers first seen (actual)", line={"color": ACTUAL}))
    total = [a + b for a, b in zip(acq["new_expected"], acq["existing_expected"], strict=True)]
    fig.add_trace(go.Scatter(x=x, y=total, name="fitted: total", line={"color": SIM, "dash": "dash"}))
    fig.add_trace(go.Scatter(x=x, y=acq["new_expected"], name="fitted: new customers", line={"color": "#e09f3e", "dash": "dashdot"}))
    fig.add_trace(go.Scatter(x=x, y=acq["existing_expected"], name="fitted: customers from before the history", line={"color": "#6a994e", "dash": "dot"}))
    fig.update_layout(title="Daily first-seen customers in the fit window and the fitted decomposition", yaxis_title="customers/day", height=380,
                      margin={"t": 60, "b": 40})
    return fig


def _distributions_figure(cal: Calibration) -> go.Figure | None:
    """Fitted vs empirical handle-time (cumulative share) and patience (survival) per channel."""
    curves = cal.models.get("distribution_curves") or {}
    handle, patience = curves.get("handle_time", {}), curves.get("patience", {})
    if not handle and not patience:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "Handle time: cumulative share (solid: data, dashed: fitted)",
        "Patience: share still waiting (solid: Kaplan-Meier, dashed: fitted)"))
    palette = {"chat": "#1f77b4", "email": "#2ca02c", "phone": "#d62728", "social": "#9467bd"}
    for ch, c in handle.items():
        color = palette.get(ch, "#555")
        fig.add_trace(go.Scatter(x=c["minutes"], y=c["empirical"], name=f"{ch} handle time (n={c['n']:,})",
                                 line={"color": color}, legendgroup=f"h{ch}"), 1, 1)
        fig.add_trace(go.Scatter(x=c["minutes"], y=c["fitted"], name=f"{ch} fitted {c['family']}",
                                 line={"color": color, "dash": "dash"}, legendgroup=f"h{ch}"), 1, 1)
    for ch, c in patience.items():
        color = palette.get(ch, "#555")
        fig.add_trace(go.Scatter(x=c["minutes"], y=c["kaplan_meier"], line_shape="hv",
                                 name=f"{ch} patience, Kaplan-Meier ({c['events']:,} abandoned, {c['censored']:,} censored)",
                                 line={"color": color}, legendgroup=f"p{ch}"), 1, 2)
        fig.add_trace(go.Scatter(x=c["minutes"], y=c["fitted"], name=f"{ch} fitted {c['family']}",
                                 line={"color": color, "dash": "dash"}, legendgroup=f"p{ch}"), 1, 2)
    fig.update_xaxes(title_text="minutes", type="log", row=1, col=1)
    fig.update_xaxes(title_text="minutes waited", row=1, col=2)
    fig.update_yaxes(range=[0, 1])
    fig.update_layout(height=430, margin={"t": 60, "b": 40}, legend={"orientation": "h", "y": -0.2})
    return fig


def figures(cal: Calibration, bt: Backtest | None) -> list[tuple[str, go.Figure]]:
    """The report's figures, in order, with an anchor name each."""
    out: list[tuple[str, go.Figure | None]] = [
        ("arrivals", _arrivals_figure(cal)),
        ("distributions", _distributions_figure(cal)),
    ]
    if bt is not None:
        out += [
            ("orders", _weekly_figure(bt, "orders", "Orders", "orders/week")),
            ("new_customers", _weekly_figure(bt, "new_customers", "Customers first seen", "customers/week")),
            ("contacts", _weekly_figure(bt, "contacts", "Contacts (all reasons and channels)", "contacts/week")),
            ("contacts_by_reason", _reasons_figure(bt)),
            ("handle_times", _handle_figure(cal, bt)),
            ("returns", _weekly_figure(bt, "returns", "Return requests", "returns/week")),
            ("repeat_purchase", _repeat_figure(bt)),
        ]
    return [(k, f) for k, f in out if f is not None]


def _params_table(cal: Calibration) -> str:
    rows = []
    for p in cal.params:
        for key, (est, lo, hi) in p.intervals.items():
            label = p.path if key == "value" else f"{p.path} [{key}]"
            rows.append(
                f"<tr><td><code>{html.escape(label)}</code></td><td>{_fmt(est)}</td><td>{_fmt(lo)} – {_fmt(hi)}</td>"
                f"<td>{html.escape(p.unit)}</td><td>{p.n:,}</td><td>{html.escape(p.method)}</td></tr>"
            )
        if not p.intervals:
            rows.append(f"<tr><td><code>{html.escape(p.path)}</code></td><td colspan=2>{html.escape(json.dumps(jsonable(p.value))[:120])}</td>"
                        f"<td>{html.escape(p.unit)}</td><td>{p.n:,}</td><td>{html.escape(p.method)}</td></tr>")
    return ("<table><thead><tr><th>parameter</th><th>estimate</th><th>95% interval</th><th>unit</th><th>n</th><th>method</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _errors_table(bt: Backtest) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_pct(v.get('fit'))}</td><td>{_pct(v.get('holdout'))}</td></tr>" for k, v in bt.errors.items()
    )
    return ("<table><thead><tr><th>weekly series</th><th>MAPE, fit window</th><th>MAPE, holdout</th></tr></thead><tbody>" + rows + "</tbody></table>"
            f"<p class=note>Replication mean of {bt.reps} simulation(s) (seed {bt.seed}) against the history; {bt.n_fit_weeks} whole fit weeks "
            f"(contacts and returns without the first {WARMUP_WEEKS}: the simulation starts with no orders in flight) and {bt.n_holdout_weeks} holdout weeks.</p>"
            + (f"<p class=note>Contacts' hour-of-day profile, simulated vs actual (total variation distance: half the sum of the absolute "
               f"differences of hourly shares): fit {_pct(bt.hour_profile.get('fit'))}, holdout {_pct(bt.hour_profile.get('holdout'))}.</p>"
               if bt.hour_profile else ""))


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:.85em;width:100%}
td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f6f6f6}
code{font-size:.95em}.warn{background:#fff4e5;border-left:4px solid #f0a030;padding:.5em 1em}.note{color:#555;font-size:.9em}
details{margin:.5em 0}summary{cursor:pointer;font-weight:600}
"""


def report_html(cal: Calibration, bt: Backtest | None, provenance: dict[str, Any]) -> str:
    """The self-contained HTML page."""
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>cxsim calibration report</title><style>{CSS}</style></head><body>"]
    w = cal.window
    parts.append("<h1>Calibration report</h1>")
    parts.append(
        f"<p>History {w.start.date()} to {(w.end).date()} (exclusive), {w.days} days; fitted on the first {w.fit_days}, "
        f"holdout of the last {w.holdout_days} (shaded in the figures). Time zone {html.escape(str(provenance.get('timezone')))}. "
        f"Base scenario <code>{html.escape(str(provenance.get('base')))}</code>; cxsim {html.escape(str(provenance.get('cxsim_version')))}, "
        f"created {html.escape(str(provenance.get('created')))}.</p>"
    )
    if cal.warnings:
        parts.append("<div class=warn><b>Warnings</b><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in cal.warnings) + "</ul></div>")
    if bt is not None:
        parts.append("<h2>Fit to history</h2>" + _errors_table(bt))
    first = True
    for name, fig in figures(cal, bt):
        parts.append(f"<div id='{name}'>" + fig.to_html(full_html=False, include_plotlyjs="inline" if first else False) + "</div>")
        first = False
    parts.append(f"<h2>Fitted parameters ({len(cal.params)})</h2>" + _params_table(cal))
    parts.append("<h2>What was fitted from which file</h2><ul>" + "".join(
        f"<li><b>{html.escape(k)}</b>: {len(v)} parameter(s)</li>" for k, v in cal.fitted_sections.items()) + "</ul>")
    kept_rows = "".join(f"<tr><td><code>{html.escape(k['path'])}</code></td><td>{html.escape(k['reason'])}</td></tr>" for k in cal.kept)
    parts.append(f"<h2>Kept from the base scenario ({len(cal.kept)})</h2><details><summary>show all</summary><table><thead><tr><th>parameter</th>"
                 f"<th>why it was not fitted</th></tr></thead><tbody>{kept_rows}</tbody></table></details>")
    if cal.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in cal.notes) + "</ul>")
    comp = cal.models.get("repurchase_comparison")
    if comp:
        rows = []
        for k in ("mbgnbd", "bgnbd", "pareto_nbd", "gamma_gamma"):
            v = comp.get(k)
            if isinstance(v, dict) and "params" in v:
                ps = ", ".join(f"{n}={_fmt(x)}" for n, x in v["params"].items())
                rows.append(f"<tr><td>{k}</td><td>{ps}</td><td>{_fmt(v.get('loglik'), 8)}</td><td>{_fmt(v.get('aic'), 8)}</td><td>{v.get('converged')}</td></tr>")
        parts.append("<h2>Buy-till-you-die comparison</h2><p class=note>" + html.escape(str(comp.get("note", ""))) +
                     f"; {comp.get('customers', 0):,} customers; best by AIC: {html.escape(str(comp.get('best_by_aic')))}. The scenario uses the MBG/NBD "
                     "(drop-out possible at every would-be purchase), fitted jointly with arrivals above.</p><table><thead><tr><th>model</th>"
                     f"<th>parameters (time unit {html.escape(str(comp.get('time_unit', 'days')))})</th>"
                     "<th>log-likelihood</th><th>AIC</th><th>converged</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
        parts.append(_btyd_holdout_html(comp.get("bgnbd_holdout")))
    parts.append("<h2>Inputs and provenance</h2><pre>" + html.escape(json.dumps(jsonable(provenance), indent=2)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _btyd_holdout_html(h: dict[str, Any] | None) -> str:
    """BG/NBD holdout prediction: the per-group table and the weekly tracking figure."""
    if not h:
        return ""
    parts = []
    if h.get("by_frequency"):
        tot = h.get("holdout_total", {})
        err = tot.get("error")
        rows = "".join(f"<tr><td>{r['calibration_repeat_purchases']}</td><td>{r['customers']:,}</td><td>{_fmt(r['predicted_mean'])}</td>"
                       f"<td>{_fmt(r['actual_mean'])}</td></tr>" for r in h["by_frequency"])
        parts.append(f"<h3>BG/NBD holdout prediction ({_fmt(h.get('holdout_weeks'))} weeks)</h3><p>Repeat purchase days per customer in the holdout, "
                     f"by calibration-period repeat purchases: predicted E[Y | x, t<sub>x</sub>, T] against actual. Total predicted "
                     f"{_fmt(tot.get('predicted'), 6)}, actual {_fmt(tot.get('actual'), 6)}" + (f" ({100 * err:+.1f}%)" if err is not None else "") +
                     ".</p><table><thead><tr><th>calibration repeat purchases</th><th>customers</th><th>predicted mean</th><th>actual mean</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    wk = h.get("weekly")
    if wk:
        fig = go.Figure()
        fig.add_scatter(x=wk["week_start"], y=wk["actual"], name="actual", line={"color": ACTUAL})
        fig.add_scatter(x=wk["week_start"], y=wk["predicted"], name="BG/NBD expected", line={"color": SIM, "dash": "dash"})
        i = int(wk["holdout_from_week"])
        if i < len(wk["week_start"]):
            fig.add_vrect(x0=wk["week_start"][i], x1=wk["week_start"][-1], fillcolor=HOLDOUT_FILL, line_width=0)
        fig.update_layout(title="Weekly repeat purchase days of the calibration customers", height=320, margin={"t": 40, "b": 30})
        parts.append(fig.to_html(full_html=False, include_plotlyjs=False))
    return "".join(parts)


def write_report(cal: Calibration, bt: Backtest | None, out_dir: str | Path, provenance: dict[str, Any]) -> None:
    """Write report.json and report.html into ``out_dir`` (which must exist)."""
    out = Path(out_dir)
    (out / "report.json").write_text(json.dumps(report_dict(cal, bt, provenance), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    (out / "report.html").write_text(report_html(cal, bt, provenance), encoding="utf-8")
