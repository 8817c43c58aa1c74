"""The request classes' fields as command-line options, and wire data as requests.

Options are derived from ``GenerateRequest``, ``EditRequest`` and ``VariationRequest``:
every settable field that is not an input (``prompt``, ``image``, ``mask``...) becomes
``--field-name``, typed after the field (an integer, a number, text, ``--x/--no-x`` for a
boolean, a JSON value for anything else), so a field added to a request class gets its
option for free. A few fields keep shorter names (``-n``, ``--format``, ``--compression``).

Requests are built from wire data by the library's converter in its strict mode, for the
command line and batch files alike; ``flag_for`` turns an API field name back into the
option that sets it, for error messages.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any, TypeVar

import attrs
import cattrs
import orjson

from openai_images._converter import StructureProblem, make_converter, structure_problems
from openai_images._requests import EditRequest, GenerateRequest, ImageRequest, VariationRequest

__all__ = [
    "REQUEST_CLASSES",
    "FieldOption",
    "StructureFailure",
    "field_options",
    "flag_for",
    "structure",
]

RequestT = TypeVar("RequestT", bound=ImageRequest)

REQUEST_CLASSES: dict[str, type[GenerateRequest | EditRequest | VariationRequest]] = {
    "generations": GenerateRequest,
    "edits": EditRequest,
    "variations": VariationRequest,
}
"""The request class of each endpoint, by the name batch files use."""

# Inputs and modes each command takes its own way (arguments, -i, --stream).
_NOT_OPTIONS = frozenset({"endpoint", "prompt", "image", "images", "mask", "markup", "stream"})

# Options whose names differ from ``--field-name``: the first long one is named in errors.
_FLAGS: dict[str, tuple[str, ...]] = {
    "model": ("-m", "--model"),
    "n": ("-n",),
    "size": ("-s", "--size"),
    "output_format": ("--format", "--output-format"),
    "output_compression": ("--compression", "--output-compression"),
}

_HELP: dict[str, str] = {
    "model": "the model: gpt-image-1.5, gpt-image-1-mini, gpt-image-2, gpt-image-2.5-flare... "
    "(the API's default when unset)",
    "n": "how many images to make (1-10; dall-e-3: 1)",
    "size": "WIDTHxHEIGHT (e.g. 1024x1024) or auto",
    "quality": "low, medium, high or auto; xhigh or max (the 2.5 models); standard or hd (DALL-E)",
    "background": "transparent, opaque or auto (GPT image models)",
    "moderation": "low or auto (GPT image models)",
    "input_fidelity": "high or low (edits, GPT image models)",
    "output_format": "png, jpeg, webp, gif or svg",
    "output_compression": "0-100, for jpeg and webp",
    "response_format": "url or b64_json (DALL-E; url results are downloaded)",
    "style": "vivid or natural (dall-e-3)",
    "user": "an id of your end user (deprecated: use --safety-identifier)",
    "safety_identifier": "a stable, hashed id of your end user, for abuse monitoring",
    "complexity": "planning effort: low, medium or high",
    "frame_count": "frames of a gif result, 2-16 (with --format gif)",
    "frame_duration_ms": "milliseconds per gif frame (with --format gif)",
    "svg": 'who authors an svg result, as JSON: \'{"model": "...", "reasoning": {"effort": '
    '"low"}}\' (with --format svg)',
    "partial_images": "partial images to stream and save, 0-3 (implies --stream)",
}

# Inputs and their parts, as the options that give them.
_INPUT_FLAGS = {
    "prompt": "prompt",  # the positional argument
    "image": "-i",
    "images": "--image-url",
    "images.image_url": "--image-url",
    "images.file_id": "--image-file-id",
    "mask": "--mask",
    "mask.image_url": "--mask-url",
    "mask.file_id": "--mask-file-id",
    "markup": "--markup",
    "stream": "--stream",
}


@attrs.frozen(kw_only=True)
class FieldOption:
    """One request field as a command-line option.

    Attributes:
        name: The field, as the API names it (the option's ``dest``).
        flags: The option strings, e.g. ``("--compression", "--output-compression")``.
        kind: ``int``, ``float``, ``str``, ``bool``, or ``object`` (a JSON value).
        help: The option's help text.
    """

    name: str
    flags: tuple[str, ...]
    kind: type
    help: str

    def add_to(self, group: argparse._ArgumentGroup) -> None:
        """Add the option to a parser's group, unset (``None``) by default."""
        long_flag = next((flag for flag in self.flags if flag.startswith("--")), self.name)
        metavar = long_flag.lstrip("-").upper().replace("-", "_")
        if self.kind is bool:
            group.add_argument(
                *self.flags,
                dest=self.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=self.help,
            )
            return
        convert: Any = _json_value if self.kind is object else self.kind
        group.add_argument(
            *self.flags,
            dest=self.name,
            type=convert,
            default=None,
            metavar="N" if self.kind is int else metavar,
            help=self.help,
        )


def field_options(cls: type[ImageRequest]) -> tuple[FieldOption, ...]:
    """The options of a request class's fields, in the class's order.

    Example:
        >>> [option.flags[0] for option in field_options(VariationRequest)]
        ['-m', '-n', '-s', '--response-format', '--user']
    """
    known = _OPTIONS.get(cls)
    if known is not None:
        return known
    hints = typing.get_type_hints(cls)
    options = []
    for field in attrs.fields(cls):
        if not field.init or field.name in _NOT_OPTIONS:
            continue
        kind, choices = _kind(hints[field.name])
        default_help = f"one of: {', '.join(choices)}" if choices else f"the API's {field.name}"
        if kind is object:
            default_help += " (a JSON value)"
        options.append(
            FieldOption(
                name=field.name,
                flags=_FLAGS.get(field.name, ("--" + field.name.replace("_", "-"),)),
                kind=kind,
                help=_HELP.get(field.name, default_help),
            )
        )
    _OPTIONS[cls] = tuple(options)
    return _OPTIONS[cls]


_OPTIONS: dict[type[ImageRequest], tuple[FieldOption, ...]] = {}


def flag_for(param: str) -> str:
    """The option that sets an API field, for messages: ``output_compression`` is
    ``--compression``; a part of an input (``image[2]``, ``images[0].file_id``) is its
    input's option.

    Example:
        >>> flag_for("output_compression"), flag_for("n"), flag_for("images[1].file_id")
        ('--compression', '-n', '--image-file-id')
    """
    field = param.split("[", 1)[0].split(".", 1)[0]
    part = param.rsplit(".", 1)[1] if "." in param else None
    if field in _INPUT_FLAGS:
        return _INPUT_FLAGS.get(f"{field}.{part}", _INPUT_FLAGS[field])
    flags = _FLAGS.get(field, ("--" + field.replace("_", "-"),))
    return next((flag for flag in flags if flag.startswith("--")), flags[0])


class StructureFailure(Exception):
    """Wire data that does not make a request: the first problem found.

    Attributes:
        problem: Which field, and what is wrong with it.
    """

    def __init__(self, problem: StructureProblem) -> None:
        super().__init__(problem.param)
        self.problem = problem


_converter = make_converter(detailed_validation=True, strict=True)


def structure(cls: type[RequestT], data: dict[str, Any]) -> RequestT:
    """Build ``cls`` from wire data (file fields as given), refusing unknown fields.

    Raises:
        StructureFailure: A field is unknown, missing or of the wrong type.

    Example:
        >>> structure(GenerateRequest, {"prompt": "a fox", "n": 2}).n
        2
    """
    try:
        return _converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as error:
        problems = structure_problems(error)
        problem = (
            problems[0]
            if problems
            else StructureProblem(param="", code="invalid_type", detail=str(error))
        )
        raise StructureFailure(problem) from error


def _json_value(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not a JSON value: {text[:40]!r}") from error


def _kind(hint: Any) -> tuple[type, tuple[str, ...]]:
    """The option type of a field's type hint, and its allowed values if it lists them."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    else:
        options = [hint]
    if len(options) == 1:
        (only,) = options
        if typing.get_origin(only) is typing.Literal:
            return str, tuple(str(value) for value in typing.get_args(only))
        if only in (bool, int, float, str):
            return only, ()
    return object, ()
