"""Command-line overrides for dataclass configs (``--set key=value``).

Example::

    from dataclasses import dataclass
    from interp.config import apply_overrides

    @dataclass(frozen=True)
    class Config:
        steps: int = 100
        lr: float = 1e-3

    apply_overrides(Config(), ["steps=10", "lr=3e-4"])  # Config(steps=10, lr=0.0003)
"""

import dataclasses
import difflib
import json
import math
import typing
from typing import Any


def parse_value(text: str, annotation: Any) -> Any:
    """Parse ``text`` as the type ``annotation`` names (int, float, bool, str, tuples, None)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(text, arg)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError("; ".join(errors))
    if origin is typing.Literal:
        for choice in args:
            if text == str(choice):
                return choice
        raise ValueError(f"{text!r} is not one of {', '.join(map(str, args))}")
    if origin in (tuple, list):
        items = [t for t in text.strip("()[]").split(",") if t.strip()]
        inner = args[0] if args else str
        values = [parse_value(t.strip(), inner) for t in items]
        return tuple(values) if origin is tuple else values
    if annotation is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{text!r} is not a boolean (use true or false)")
    if annotation is int:
        return parse_int(text)
    if annotation in (float, str):
        try:
            return annotation(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a valid {annotation.__name__}") from None
    return text


def parse_int(text: str) -> int:
    """An integer, also written as a whole number in exponent form (``1e5``); ``1e-3`` or
    ``2.5`` is refused, not rounded to 0 or 2."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid int") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{text!r} is not a valid int (a whole number such as 1000 or 1e3)")
    return int(number)


def apply_overrides(config: Any, assignments: list[str]) -> Any:
    """A copy of the dataclass ``config`` with ``key=value`` assignments applied."""
    if not assignments:
        return config
    hints = typing.get_type_hints(type(config))
    fields = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for assignment in assignments:
        if "=" not in assignment:
            raise ValueError(f"--set expects key=value, got {assignment!r}")
        key, text = (part.strip() for part in assignment.split("=", 1))
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"{type(config).__name__} has no field {key!r}.{hint} Fields: {', '.join(sorted(fields))}")
        try:
            changes[key] = parse_value(text, hints.get(key, Any))
        except ValueError as error:
            raise ValueError(f"--set {key}: {error}") from None
    return dataclasses.replace(config, **changes)
