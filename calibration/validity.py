"""Fitted values the scenario schema rejects: clamped to the schema's bound or replaced by the base
value, each with a warning naming the parameter, the fitted value and the reason, so one
out-of-range estimate never costs the rest of the calibration.

A value below a ``>=`` bound (or above a ``<=`` bound) is clamped to that bound: the data point
past the limit the scenario can represent, and the bound is the nearest value it can. Anything else
(a strict bound, a wrong type, a constraint across fields such as shares that must sum to 1) keeps
the base scenario's value for the whole fitted entry.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from calibration.collector import Collector
from sim.loader import deep_merge
from sim.scenario import Scenario

__all__ = ["valid_scenario"]

MAX_ROUNDS = 20


def _get(node: Any, loc: tuple[Any, ...]) -> tuple[bool, Any]:
    for part in loc:
        if (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            node = node[part]
        else:
            return False, None
    return True, node


def _fitted_prefix(overrides: dict[str, Any], loc: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The longest prefix of ``loc`` (from the dict keys down) that is a leaf the calibration set:
    a scalar, a list or a distribution mapping in the overrides."""
    node: Any = overrides
    for i, part in enumerate(loc):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
        if not isinstance(node, dict) or "dist" in node:
            return loc[: i + 1]
    return loc if loc else None


def _unset(overrides: dict[str, Any], loc: tuple[Any, ...]) -> None:
    node = overrides
    for part in loc[:-1]:
        node = node[part]
    del node[loc[-1]]


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def valid_scenario(base_dump: dict[str, Any], out: Collector) -> Scenario:
    """The base deep-merged with ``out.overrides``, after fixing every fitted value the schema
    rejects (in ``out``: the override, its :class:`calibration.results.Param`, a warning, and the
    reason in the kept-from-base list). Raises ``ValueError`` when a problem is not in a fitted
    value (the base itself is invalid)."""
    for _ in range(MAX_ROUNDS):
        try:
            return Scenario.model_validate(deep_merge(base_dump, out.overrides))
        except ValidationError as exc:
            errors = exc.errors()
        fixed = False
        for err in errors:
            loc = tuple(err["loc"])
            leaf = _fitted_prefix(out.overrides, loc)
            if leaf is None:
                continue
            path = _dotted(leaf)
            ctx = err.get("ctx") or {}
            got = err.get("input")
            ok, current = _get(out.overrides, loc)
            bound = ctx.get("ge", ctx.get("le"))
            if ok and err["type"] in ("greater_than_equal", "less_than_equal") and isinstance(current, int | float) and bound is not None:
                target: Any = out.overrides
                for part in loc[:-1]:
                    target = target[part]
                target[loc[-1]] = type(current)(bound) if isinstance(current, int) and float(bound).is_integer() else float(bound)
                where = _dotted(loc)
                out.warn(f"{where}: fitted value {got!r} is outside the scenario's range ({err['msg']}); clamped to {bound}")
                _mark(out, path, {"clamped": {"at": where, "fitted": got, "to": bound, "reason": err["msg"]}}, clamp=True)
            else:
                ok_b, base_v = _get(base_dump, leaf)
                _unset(out.overrides, leaf)
                kept = f"the base value {base_v!r} is kept" if ok_b and not isinstance(base_v, dict | list) else "the base value is kept"
                out.warn(f"{path}: fitted value {got!r} is rejected by the scenario ({_dotted(loc)}: {err['msg']}); {kept}")
                _mark(out, path, {"rejected": {"at": _dotted(loc), "fitted": got, "reason": err["msg"]}}, clamp=False)
            fixed = True
            break  # re-validate: one fix may change the others
        if not fixed:
            raise ValueError("; ".join(f"{_dotted(tuple(e['loc']))}: {e['msg']}" for e in errors))
    raise ValueError("the fitted values could not be made valid")


def _mark(out: Collector, path: str, diag: dict[str, Any], clamp: bool) -> None:
    param = next((q for q in out.params if q.path == path), None)
    if param is None:
        return
    if clamp:
        ok, value = _get(out.overrides, tuple(path.split(".")))
        if ok:
            param.value = value
        param.diagnostics.update(diag)
        return
    out.params.remove(param)
    for paths in out.sections.values():
        if path in paths:
            paths.remove(path)
    out.why(path, f"fitted value outside the scenario's range: {diag['rejected']['reason']} (fitted {diag['rejected']['fitted']!r})")
