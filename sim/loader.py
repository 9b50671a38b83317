"""Reading scenario files: YAML (safe loader), ``extends:`` resolution, readable errors.

A file may name another with ``extends: other.yaml`` (relative to itself). Its mapping is
deep-merged over the resolved parent: mappings merge key by key, everything else (numbers,
strings, lists) replaces. ``extends`` chains may be any length but not circular.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.input_checks import BOOL_FOR_NUMBER
from sim.scenario import Scenario


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario file: where (dotted key path) and why."""

    path: str
    reason: str


class ScenarioError(Exception):
    """A scenario file is invalid. ``str()`` is a message meant for the user."""

    def __init__(self, file: str | Path, problems: list[Problem]) -> None:
        self.file = str(file)
        self.problems = problems
        lines = [f"{self.file}: {len(problems)} problem(s)" if len(problems) > 1 else f"{self.file}:"]
        lines += [f"  {p.path or '(top level)'}: {p.reason}" for p in problems]
        super().__init__("\n".join(lines))


_TAGS = ("dist", "type", "kind")
"""Keys that say which kind of mapping this is (a distribution family, a loyalty program type, an
incident kind): a mapping of another kind replaces the old one instead of merging into it."""


def _same_kind(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return not any(t in old and t in new and old[t] != new[t] for t in _TAGS)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` merged into ``base`` (mappings recursively, unless they are of a
    different kind, e.g. another distribution family). Inputs are not modified."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and _same_kind(old, value):
            out[key] = deep_merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


MAX_FILE_BYTES = 10 * 2**20
"""Largest scenario file read (the shipped ones are a few kB)."""
MAX_DEPTH = 64
"""Deepest nesting of lists and mappings in a scenario file (the schema needs about 6)."""
MAX_ITEMS = 1_000_000
"""Most values a file may expand to, counting each use of a YAML alias (``*name``) again."""


class _ScenarioYamlLoader(yaml.SafeLoader):
    """The safe loader, stricter: duplicate keys, impossible dates and deep nesting are errors
    (with the line), not silently last-wins, a ``ValueError`` or a ``RecursionError``."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if seen is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first on line {seen.start_mark.line + 1})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: Any) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date {node.value!r}: {exc}", node.start_mark
            ) from None


_ScenarioYamlLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _ScenarioYamlLoader.construct_yaml_timestamp
)


def _too_many_items(data: Any) -> bool:
    """Whether ``data`` holds more than MAX_ITEMS values, counting shared (aliased) ones per use.
    Stops counting at the limit, so an alias bomb costs no more than MAX_ITEMS steps."""
    stack, count = [data], 0
    while stack:
        v = stack.pop()
        count += 1
        if count > MAX_ITEMS:
            return True
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def parse_yaml(text: str) -> Any:
    """The YAML document in ``text`` with the strict loader; raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_ScenarioYamlLoader)  # a SafeLoader subclass


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ScenarioError(path, [Problem("", "file not found")])
    if not path.is_file():
        raise ScenarioError(path, [Problem("", "not a file")])
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(
                path, [Problem("", f"file is {size:,} bytes; scenario files are at most {MAX_FILE_BYTES:,}")]
            )
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ScenarioError(path, [Problem("", "malformed YAML: nested too deeply")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(path, [Problem(where, f"malformed YAML: {problem}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, [Problem("", f"cannot read: {exc}")]) from None
    if data is None:
        raise ScenarioError(path, [Problem("", "the file is empty")])
    if not isinstance(data, dict):
        raise ScenarioError(path, [Problem("", f"expected a mapping of keys, found {type(data).__name__}")])
    if _too_many_items(data):
        raise ScenarioError(
            path, [Problem("", f"expands to more than {MAX_ITEMS:,} values (YAML aliases included)")]
        )
    return data


def resolve_raw(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's mapping with its ``extends`` chain merged in (``extends`` removed)."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise ScenarioError(_chain[0], [Problem("extends", f"cycle in extends: {cycle}")])
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError(path, [Problem("extends", "must be a file path (string)")])
    parent_path = path.parent / parent
    if not parent_path.exists():
        raise ScenarioError(path, [Problem("extends", f"extended file {parent_path} not found")])
    return deep_merge(resolve_raw(parent_path, (*_chain, resolved)), data)


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_FRIENDLY = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def _short(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters (a 100,000-character value is not echoed whole)."""
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text):,} characters)"


def problems_from_validation(exc: ValidationError) -> list[Problem]:
    """Turn pydantic's errors into (key path, reason) pairs a user can act on."""
    problems = []
    for err in exc.errors(include_url=False):
        reason = _FRIENDLY.get(err["type"], err["msg"])
        if reason.startswith("Value error, "):
            reason = reason[len("Value error, ") :]
        shown = err.get("input")
        if (
            err["type"] not in _FRIENDLY
            and "input" in err
            and not isinstance(shown, dict | list | dt.date)
        ):
            reason += f" (got {_short(repr(shown))})"
        loc = tuple(err["loc"])
        if err["type"] == BOOL_FOR_NUMBER:  # raised by the model for one of its fields
            loc = (*loc, err.get("ctx", {}).get("field", "?"))
        problems.append(Problem(_loc_to_path(loc), reason))
    return problems


def scenario_from_dict(data: dict[str, Any], source: str | Path = "<scenario>") -> Scenario:
    """Validate a mapping as a Scenario, raising :class:`ScenarioError` naming ``source``."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, problems_from_validation(exc)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read, resolve ``extends`` and validate a scenario file."""
    return scenario_from_dict(resolve_raw(path), path)


def dump_scenario_yaml(data: dict[str, Any]) -> str:
    """YAML text for a scenario mapping (dates as ISO strings, keys in model order)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)
