"""Changing a scenario at a dotted key path: ``contacts.channels.chat.sla_target=0.8``.

Used by sweeps (``cxsim run --set``), sensitivity analysis and experiment design, so that every
tool that varies a parameter names it the same way and validates the result like a scenario file.

A key path is keys joined by dots (``automation.enabled``); a list element is addressed by its
index in brackets (``demand.peaks[0].multiplier``). Values are YAML scalars or flow collections,
read with the same strict safe loader as scenario files (``0.4``, ``true``, ``[1, 2]``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.loader import Problem, ScenarioError, parse_yaml, scenario_from_dict
from sim.scenario import Scenario

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


class OverrideError(ValueError):
    """A key path or value a user typed cannot be applied. ``str()`` is meant for the user."""


@dataclass(frozen=True)
class Override:
    """One key path and the value to put there."""

    path: str
    value: Any

    def label(self) -> str:
        """``path=value`` as a user would type it (used in scenario names and tables)."""
        return f"{self.path}={_short_value(self.value)}"


def _short_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def split_path(path: str) -> list[str | int]:
    """``"a.b[2].c"`` -> ``["a", "b", 2, "c"]``; raises :class:`OverrideError` if malformed."""
    parts: list[str | int] = []
    if not path:
        raise OverrideError("empty key path")
    for piece in path.split("."):
        m = _PART.fullmatch(piece)
        if m is None:
            raise OverrideError(f"{path!r}: {piece!r} is not a key (letters, digits, _ and [index])")
        parts.append(m.group(1))
        parts += [int(i) for i in re.findall(r"\[(\d+)\]", m.group(2))]
    return parts


def set_path(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of the scenario mapping ``raw`` with ``value`` at ``path``.

    Intermediate mappings that the file leaves to the schema's defaults are created; a list index
    must exist. Whether the key is allowed there is the schema's job (see :func:`apply`).
    """
    out = copy.deepcopy(raw)
    parts = split_path(path)
    node: Any = out
    for i, key in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        where = _joined(parts[: i + 1])
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                raise OverrideError(f"{path}: {_joined(parts[:i])} has no element {key}")
            node = node[key]
            continue
        if not isinstance(node, dict):
            raise OverrideError(f"{path}: {_joined(parts[:i]) or '(top level)'} is not a mapping")
        if key not in node or node[key] is None:
            if isinstance(nxt, int):
                raise OverrideError(f"{path}: {where} is not a list in this scenario")
            node[key] = {}
        node = node[key]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise OverrideError(f"{path}: {_joined(parts[:-1])} has no element {last}")
    elif not isinstance(node, dict):
        raise OverrideError(f"{path}: {_joined(parts[:-1]) or '(top level)'} is not a mapping")
    node[last] = copy.deepcopy(value)
    return out


def get_path(raw: dict[str, Any], path: str) -> Any:
    """The value at ``path`` in ``raw`` (``None`` where the file leaves it to the default)."""
    node: Any = raw
    for key in split_path(path):
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                return None
            node = node[key]
        else:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
    return node


def _joined(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + p
    return out


def parse_value(text: str, where: str) -> Any:
    """One value as typed on a command line, read as YAML (strict safe loader)."""
    try:
        return parse_yaml(text)
    except Exception as exc:  # any YAML error (syntax, duplicate key) becomes one message
        raise OverrideError(f"{where}: {text!r} is not a valid value ({exc})") from None


def apply(
    raw: dict[str, Any], overrides: list[Override], source: str | Path = "<scenario>"
) -> Scenario:
    """Validate ``raw`` with ``overrides`` applied, as a scenario file would be.

    Raises :class:`ScenarioError` naming ``source`` and, for a schema problem under an overridden
    path, the override that caused it.
    """
    data = raw
    for o in overrides:
        data = set_path(data, o.path, o.value)
    try:
        return scenario_from_dict(data, source)
    except ScenarioError as exc:
        labels = [o.label() for o in overrides]
        problems = [
            Problem(p.path, f"{p.reason} [from --set {', '.join(labels)}]")
            if any(p.path.startswith(o.path) or o.path.startswith(p.path) for o in overrides)
            else p
            for p in exc.problems
        ]
        raise ScenarioError(source, problems) from None
