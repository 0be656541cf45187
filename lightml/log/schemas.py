"""Pydantic schemas of the event payloads: the documented shape of the log, derived from
the payload constructors of ``lightml.log.events`` (their signatures state the fields).

``lightml verify`` checks every stored payload against these; the writer does not (it
builds payloads from validated input, and validating each one would cost more than the
insert). A test checks that every event the library writes matches its schema.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any, Callable, get_type_hints

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from lightml.log import events as ev

# Every integer of a payload is a real int (not a bool, a float or text) that SQLite's signed
# 64-bit INTEGER can hold: a larger one would fail the projection with a bare OverflowError.
SqlInt = Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]
# A value is a number (an int is fine), never text such as "0.5" that a lax check would convert.
Number = Annotated[float, Field(strict=True)]


def is_json_array_text(text: object) -> bool:
    """Per-sample scores and document keys are stored as JSON array text (``migrate`` asks
    this of 1.x rows before it turns them into events)."""
    try:
        return isinstance(text, str) and isinstance(json.loads(text), list)
    except (ValueError, RecursionError):
        return False


def _json_array_text(text: str) -> str:
    if not is_json_array_text(text):
        raise ValueError("not JSON array text")
    return text


JsonArrayText = Annotated[str, AfterValidator(_json_array_text)]


class _Payload(BaseModel):
    # No NaN or infinity anywhere: the log holds what the tables can (SQLite stores NaN as NULL).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# What the annotations of the constructors (``lightml.log.events``) name, as pydantic types;
# each derived model joins this namespace, for the payloads that hold it.
def _settings_text(text: str) -> str:
    from lightml.write.validation import settings_problem

    problem = settings_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


SettingsText = Annotated[str, AfterValidator(_settings_text)]
SettingsIds = dict[str, list[SqlInt]]


def _json_object_text(text: str) -> str:
    from lightml.write.dashboard_items import spec_problem

    problem = spec_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


JsonObjectText = Annotated[str, AfterValidator(_json_object_text)]

_KINDS: dict[str, Any] = {"SqlInt": SqlInt, "Number": Number, "JsonArrayText": JsonArrayText,
                          "SettingsText": SettingsText, "SettingsIds": SettingsIds, "JsonObjectText": JsonObjectText}


def _model_of(name: str, *constructors: Callable[..., Any]) -> type[_Payload]:
    """The pydantic model of what the constructors build together: a field per parameter, of
    the kind its annotation names, required unless it has a default."""
    fields: dict[str, Any] = {}
    for constructor in constructors:
        hints = get_type_hints(constructor, localns=_KINDS, include_extras=True)
        for parameter in inspect.signature(constructor).parameters.values():
            default = ... if parameter.default is parameter.empty else parameter.default
            fields[parameter.name] = (hints[parameter.name], default)
    model = create_model(name, __base__=_Payload, __doc__=constructors[0].__doc__, __module__=__name__, **fields)
    _KINDS[name] = model
    return model


# Rows and items first: the payloads that hold them name them.
ModelRow = _model_of("ModelRow", ev.model_row)
CheckpointRow = _model_of("CheckpointRow", ev.checkpoint_row)
MetricRow = _model_of("MetricRow", ev.metric_row)
SamplesLocation = _model_of("SamplesLocation", ev.samples_location)
ScoresRow = _model_of("ScoresRow", ev.scores_row)
RepeatRow = _model_of("RepeatRow", ev.repeat_row)
ModelSnapshot = _model_of("ModelSnapshot", ev.model_snapshot)
RunRow = _model_of("RunRow", ev.run_row)
MetricItem = _model_of("MetricItem", ev.metric_item, ev.merge_marks)
OverwrittenItem = _model_of("OverwrittenItem", ev.overwritten_item, ev.merge_marks)

# One model per event type, named after it (``model_registered`` -> ``ModelRegistered``).
PAYLOADS: dict[str, type[_Payload]] = {
    event_type: _model_of(event_type.title().replace("_", ""), constructor)
    for event_type, constructor in ev.CONSTRUCTORS.items()
}

# The schemas above are those of CURRENT_VERSION (lightml.log.events): older payloads are
# validated after upcasting.


def validate_payload(event_type: str, payload: dict[str, Any]) -> None:
    """Raise pydantic.ValidationError if a payload does not match its type's schema."""
    PAYLOADS[event_type].model_validate(payload)


def payload_problem(event_type: str, payload: dict[str, Any]) -> str | None:
    """None when the payload matches its schema, else where and why it does not, in one line."""
    from pydantic import ValidationError

    try:
        validate_payload(event_type, payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        return f"{where}: {error['msg']} (got {error.get('input')!r})"
    return None
