"""The cxsim dashboard: a Plotly Dash app comparing stored simulation runs.

``create_app(runs_dir, scenarios_dir)`` builds the app; ``main(...)`` serves it on 127.0.0.1.
Pages read results only through :mod:`dashboard.data`; figures come from the pure functions in
:mod:`dashboard.figures`.
"""
