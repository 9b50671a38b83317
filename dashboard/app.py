"""The app factory and the server entry point.

``create_app(runs_dir, scenarios_dir)`` builds a multi-page Dash app: Compare, Retention,
Cost-to-serve, LTV & ROI, Peak service and What-if. What-if runs go through Dash's background
callbacks (a :class:`dash.DiskcacheManager`: a separate process per job, results in a disk cache),
so no simulation runs on a request thread. ``main`` serves it, on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import dash
import diskcache
from dash import Dash, DiskcacheManager

from dashboard import data, shell
from dashboard.pages import compare, cost, ltv, peak, retention, whatif
from dashboard.registry import register_callbacks

PAGES = (compare, retention, cost, ltv, peak, whatif)
ASSETS = Path(__file__).parent / "assets"


def _cache_dir(runs_dir: Path) -> Path:
    """Background-job cache: ``runs_dir/.cache/dashboard`` (ignored by the run listing, which skips
    dot-folders), or a temporary folder when the runs folder is not writable."""
    path = runs_dir / ".cache" / "dashboard"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
        return path
    except OSError:
        return Path(tempfile.mkdtemp(prefix="cxsim-dashboard-"))


def create_app(runs_dir: Path, scenarios_dir: Path, cache_dir: Path | None = None) -> Dash:
    """The dashboard over the runs in ``runs_dir`` and the scenario files in ``scenarios_dir``."""
    runs_dir, scenarios_dir = Path(runs_dir), Path(scenarios_dir)
    data.configure(runs_dir, scenarios_dir)
    cache = diskcache.Cache(str(cache_dir or _cache_dir(runs_dir)))
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        background_callback_manager=DiskcacheManager(cache),
        title="cxsim dashboard",
        update_title="",
    )
    for order, page in enumerate(PAGES):
        dash.register_page(
            page.__name__,
            path=page.PATH,
            name=page.NAME,
            title=f"{page.NAME} · cxsim",
            order=order,
            layout=page.layout,
        )
    app.layout = shell.layout
    register_callbacks(app)
    return app


def main(
    runs_dir: Path,
    scenarios_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8050,
    debug: bool = False,
) -> None:
    """Serve the dashboard (blocking) at ``http://host:port``.

    What-if runs use worker processes started by the ``forkserver`` method, which re-import the
    main script: call this from a module, a console script (``cxsim dashboard``) or under
    ``if __name__ == "__main__":``, never at the top level of a script.
    """
    app = create_app(Path(runs_dir), Path(scenarios_dir))
    app.run(host=host, port=port, debug=debug)
