"""Checks every scenario field gets, whatever its type: the base class of the scenario models.

- numbers are finite (no ``.inf``/``.nan``) and within ``±MAX_MAGNITUDE``: no parameter of the
  model needs more, and larger values overflow the engine's integer clocks and cent amounts;
- a boolean is not a number (YAML ``true`` where a count or rate is expected is a mistake, which
  pydantic would otherwise read as 1);
- dates (and date-times) lie within ``EARLIEST_DATE .. LATEST_DATE``.

Field-specific ranges stay with the fields (``Field(ge=..., le=...)``).
"""

from __future__ import annotations

import datetime as dt
import math
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic_core import PydanticCustomError

MAX_MAGNITUDE = 1e9
"""Largest absolute value of any number in a scenario."""
EARLIEST_DATE = dt.date(1990, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)
"""Dates a scenario may mention (the horizon must end by LATEST_DATE too)."""
BOOL_FOR_NUMBER = "bool_for_number"
"""Error type of a boolean given for a number; its context names the field (``ctx["field"]``)."""


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> tuple[Any, ...]:
    """The alternatives of a union (``X | Y``, ``Optional[X]``), or the annotation alone."""
    annotation = _strip(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(_strip(a) for a in get_args(annotation))
    return (annotation,)


def _scalar_wants_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any or annotation is object:
        return True
    if get_origin(annotation) is Literal:
        return any(isinstance(a, bool) for a in get_args(annotation))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _bool_for_number(annotation: Any, value: Any) -> bool:
    """True when ``value`` holds a boolean where ``annotation`` expects a number."""
    members = _members(annotation)
    if isinstance(value, bool):
        numeric = any(m in (int, float) for m in members)
        return numeric and not any(_scalar_wants_bool(m) for m in members)
    for m in members:
        origin = get_origin(m)
        args = get_args(m)
        if isinstance(value, list) and origin in (list, tuple, set, frozenset) and args:
            return any(_bool_for_number(args[0], v) for v in value)
        if isinstance(value, dict) and origin in (dict, typing.Mapping) and len(args) == 2:
            return any(_bool_for_number(args[1], v) for v in value.values())
    return False


def _bad_value(value: Any) -> str | None:
    """Why ``value`` (a validated field value, walked through lists and dicts) is out of bounds."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, bool | str | BaseModel) or v is None:
            continue  # nested models check their own fields
        if isinstance(v, int | float):
            if isinstance(v, float) and not math.isfinite(v):
                return "must be a finite number"
            if abs(v) > MAX_MAGNITUDE:
                return f"must be within ±{MAX_MAGNITUDE:.0e}"
        elif isinstance(v, dt.date):  # dt.datetime is a dt.date
            day = v.date() if isinstance(v, dt.datetime) else v
            if not EARLIEST_DATE <= day <= LATEST_DATE:
                return f"dates must lie within {EARLIEST_DATE}..{LATEST_DATE} (got {v.isoformat()})"
        elif isinstance(v, list | tuple | set | frozenset):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return None


class InputModel(BaseModel):
    """Base of every scenario model: unknown keys are errors, instances are immutable, and every
    field gets the checks in this module's docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        # (a model validator: pydantic allows no "before" field validator on discriminator keys)
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                key = field.alias or name
                if key in data and _bool_for_number(field.annotation, data[key]):
                    raise PydanticCustomError(
                        BOOL_FOR_NUMBER,
                        "expected a number, got a boolean (true/false)",
                        {"field": key},
                    )
        return data

    @field_validator("*", mode="after")
    @classmethod
    def _finite_and_dated(cls, value: Any) -> Any:
        problem = _bad_value(value)
        if problem is not None:
            raise ValueError(problem)
        return value
