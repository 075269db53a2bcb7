"""Command-line flags generated from a pydantic config model, so each setting is written once.

A field ``max_new_tokens`` becomes ``--max-new-tokens``: its annotation gives the type (a ``Literal``
gives choices, a list or tuple a comma-separated value, a bool a switch), its ``description`` the
help, its default the "(default: ...)" note. A bool that defaults to True is turned off
by ``--no-...``. ``json_schema_extra`` holds the rest: ``group`` (key of an argument group),
``metavar``, ``nargs``/``const``/``action``/``required``, and ``cli: False`` for settings only a config
file sets.

Flags not given stay out of the namespace (``argparse.SUPPRESS``): the model's own defaults apply,
and a config file's values are overridden only by flags the user typed.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agentflan_eval.errors import AgentFlanError

M = TypeVar("M", bound=BaseModel)
Target = argparse.ArgumentParser | argparse._ArgumentGroup


def extra(field: FieldInfo) -> dict[str, Any]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def is_flag(field: FieldInfo) -> bool:
    return extra(field).get("cli", True) is not False


def flag_name(name: str, field: FieldInfo) -> str:
    negated = field.default is True and _unwrap(field.annotation) is bool
    return ("--no-" if negated else "--") + name.replace("_", "-")


def flag_names(model: type[BaseModel]) -> dict[str, str]:
    """Field name → the flag that sets it."""
    return {n: flag_name(n, f) for n, f in model.model_fields.items() if is_flag(f)}


def add_flags(
    target: Target, model: type[BaseModel], groups: Mapping[str, Target] | None = None, dest_prefix: str = ""
) -> None:
    """One flag per field of ``model``, in field order, each in the group its ``group`` key names."""
    for name, field in model.model_fields.items():
        if is_flag(field):
            where = (groups or {}).get(str(extra(field).get("group", "")), target)
            kwargs = _argparse_kwargs(name, field)
            where.add_argument(
                flag_name(name, field), dest=dest_prefix + name, default=argparse.SUPPRESS, **kwargs
            )


def given(args: argparse.Namespace, model: type[BaseModel], dest_prefix: str = "") -> dict[str, Any]:
    """The fields of ``model`` whose flags were on the command line, with their values."""
    return {n: getattr(args, dest_prefix + n) for n in model.model_fields if hasattr(args, dest_prefix + n)}


def build(model: type[M], values: Mapping[str, Any]) -> M:
    """``model(**values)``, a bad value reported as one line naming its flag."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as e:
        raise AgentFlanError(error_line(e, flag_names(model))) from None


def error_line(error: ValidationError, flags: Mapping[str, str]) -> str:
    """Pydantic's report, one line per problem, joined into one line, in the user's terms (flags)."""
    parts = []
    for err in error.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = flags.get(field, field)
        ctx = {k: _number(v) for k, v in err.get("ctx", {}).items()}
        got = _number(err.get("input"))
        if err["type"] == "greater_than_equal":
            parts.append(f"{flag} must be {ctx['ge']} or more, not {got}")
        elif err["type"] == "greater_than":
            parts.append(f"{flag} must be more than {ctx['gt']}, not {got}")
        elif err["type"] == "less_than_equal":
            parts.append(f"{flag} must be at most {ctx['le']}, not {got}")
        else:
            parts.append(f"{flag}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _number(value: Any) -> Any:
    return f"{value:g}" if isinstance(value, float) else value


def _argparse_kwargs(name: str, field: FieldInfo) -> dict[str, Any]:
    meta = extra(field)
    kind = _unwrap(field.annotation)
    kwargs: dict[str, Any] = {k: meta[k] for k in ("metavar", "nargs", "const", "required") if k in meta}
    kwargs["help"] = _help(field)
    origin = typing.get_origin(kind)
    if kind is bool:
        return {**kwargs, "action": "store_false" if field.default is True else "store_true"}
    if origin is Literal:
        return {**kwargs, "choices": list(typing.get_args(kind)), "type": type(typing.get_args(kind)[0])}
    kwargs.setdefault("metavar", name.upper())
    if origin in (list, tuple):
        item = typing.get_args(kind)[0]
        if meta.get("action") == "append":  # a repeated flag, one value each time
            return {**kwargs, "action": "append", "type": item}
        return {**kwargs, "type": lambda text: [item(x.strip()) for x in text.split(",") if x.strip()]}
    if kind in (str, int, float, Path):
        return {**kwargs, "type": kind}
    raise TypeError(f"no flag for a field of type {kind}; give it json_schema_extra={{'cli': False}}")


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → X (None means "not given", which a missing flag already says)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _help(field: FieldInfo) -> str:
    text = field.description or ""
    default = field.default
    shown_elsewhere = "(default" in text or extra(field).get("required")
    unset = (
        default is None or default is PydanticUndefined or isinstance(default, bool) or default in ("", ())
    )
    if not unset and not shown_elsewhere:
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        text += f" (default: {shown})"
    return text.strip().replace("%", "%%")
