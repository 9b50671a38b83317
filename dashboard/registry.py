"""Per-app callback registration.

Pages declare their callbacks with :func:`callback` (same arguments as ``dash.callback``); the
decorated function is returned unchanged, so tests call it as a plain function. ``create_app``
attaches every declared callback to the app it builds with :func:`register_callbacks`.

Why not ``dash.callback`` directly: it appends to one process-wide list that the *first* app to
serve a request takes and clears, so a second app built in the same process (tests, or a server
restarted in-process) would silently have no callbacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dash

_SPECS: list[tuple[tuple[Any, ...], dict[str, Any], Callable[..., Any]]] = []


def callback(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a callback for every app :func:`register_callbacks` builds."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        _SPECS.append((args, kwargs, fn))
        return fn

    return deco


def register_callbacks(app: dash.Dash) -> None:
    """Attach every declared callback to ``app``."""
    for args, kwargs, fn in _SPECS:
        app.callback(*args, **kwargs)(fn)


def triggered_id() -> Any:
    """The id of the input that fired the running callback (``None`` outside a callback)."""
    try:
        return dash.ctx.triggered_id
    except Exception:  # called as a plain function, outside any callback context
        return None
