"""The one place where Python objects become wire data and back.

``make_converter`` builds a private cattrs converter (never the global one):

- requests unstructure to the API's field names with unset (``None``) fields left out, so
  the API applies its own defaults; file fields are left to the multipart encoder;
- responses structure tolerantly: unknown fields are ignored, enum-like fields are plain
  strings, lists become tuples;
- scalars are strict both ways (a ``"5"`` is not an int, a ``1`` is not a string), so the
  local server reports a wrongly typed field instead of guessing; so are containers (a
  string is not a list of images, nor an object).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mutable_sequence,
    is_sequence,
    list_structure_factory,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._requests import (
    EditRequest,
    GenerateRequest,
    ImageRef,
    ImageRequest,
    SvgOptions,
    SvgReasoning,
    VariationRequest,
)
from ._responses import ImagesResponse

__all__ = ["converter", "make_converter", "request_fields", "structure_response"]

T = TypeVar("T")

# Fields carried as file parts (or, for JSON edits, added by the body builder).
FILE_FIELDS: dict[type[Any], tuple[str, ...]] = {
    GenerateRequest: (),
    EditRequest: ("image", "mask", "markup"),
    VariationRequest: ("image",),
}


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_int(value: Any, _: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Literal


Hook = Callable[[Any, Any], Any]


def _is_optional(tp: Any) -> bool:
    args = typing.get_args(tp)
    return (
        typing.get_origin(tp) in (typing.Union, types.UnionType)
        and len(args) == 2
        and type(None) in args
    )


def _optional(tp: Any, conv: cattrs.Converter) -> Hook:
    inner = next(arg for arg in typing.get_args(tp) if arg is not type(None))
    hook = conv.get_structure_hook(inner)

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else hook(value, inner)

    return structure


def _only(kinds: tuple[type, ...], what: str, hook: Hook) -> Hook:
    def structure(value: Any, tp: Any) -> Any:
        if not isinstance(value, kinds):
            raise TypeError(f"expected {what}, got {type(value).__name__}")
        return hook(value, tp)

    return structure


def make_converter(*, detailed_validation: bool = False) -> cattrs.Converter:
    """A converter for this library's requests and responses.

    Args:
        detailed_validation: Collect every structuring error with its path (the local
            server uses this to name the offending ``param``); off by default for speed.

    Example:
        >>> conv = make_converter()
        >>> conv.unstructure(GenerateRequest(prompt="a fox", n=2))
        {'prompt': 'a fox', 'n': 2}
    """
    conv = cattrs.Converter(detailed_validation=detailed_validation, forbid_extra_keys=False)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    # Enum-like fields take any string here: the rules table judges values, and an API that
    # grows new ones must not break parsing.
    conv.register_structure_hook_func(_is_literal, _structure_str)

    # cattrs takes any iterable for a list and anything with ``in`` for an object: "abc"
    # would pass for three images, each with every field unset.
    def sequence_hook(tp: Any) -> Hook:
        make = (
            list_structure_factory
            if is_mutable_sequence(tp)
            else homogenous_tuple_structure_factory
        )
        return _only((list, tuple), "a list", make(tp, conv))

    conv.register_structure_hook_factory(is_sequence, sequence_hook)
    conv.register_structure_hook_factory(
        attrs.has, lambda cl: _only((Mapping,), "an object", conv.gen_structure_attrs_fromdict(cl))
    )
    # cattrs would look the inner type's hook up again for every optional value it meets;
    # half the time of structuring a response went there.
    conv.register_structure_hook_factory(_is_optional, lambda tp: _optional(tp, conv))

    # Before the requests: their generated functions capture these nested values' hooks.
    for nested in (ImageRef, SvgReasoning, SvgOptions):
        conv.register_unstructure_hook(
            nested, make_dict_unstructure_fn(nested, conv, _cattrs_omit_if_default=True)
        )
    for cls, file_fields in FILE_FIELDS.items():
        omitted: dict[str, Any] = {name: override(omit=True) for name in ("endpoint", *file_fields)}
        conv.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True, **omitted)
        )
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **omitted))
    conv.register_structure_hook(
        ImagesResponse,
        make_dict_structure_fn(
            ImagesResponse,
            conv,
            request_id=override(omit=True),
            headers=override(omit=True),
            raw=override(omit=True),
        ),
    )
    return conv


converter = make_converter()
"""The converter the client uses."""


def request_fields(request: ImageRequest) -> dict[str, Any]:
    """The request's non-file fields as wire data, unset ones left out.

    A JSON edit's ``mask`` reference is included; upload fields never are.

    Example:
        >>> request_fields(EditRequest(images=[ImageRef(file_id="file-1")], prompt="p"))
        {'prompt': 'p', 'images': [{'file_id': 'file-1'}]}
    """
    fields: dict[str, Any] = converter.unstructure(request)
    if isinstance(request, EditRequest) and isinstance(request.mask, ImageRef):
        fields["mask"] = converter.unstructure(request.mask)
    return fields


def structure_response(
    data: Any,
    *,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ImagesResponse:
    """Build an ``ImagesResponse`` from decoded JSON and the HTTP exchange's metadata.

    Raises:
        TypeError, ValueError, KeyError, cattrs.BaseValidationError: ``data`` is not a
            response body as the contract describes it.
    """
    response = converter.structure(data, ImagesResponse)
    return attrs.evolve(
        response,
        # Each image learns the response's format, so saving it picks the right extension.
        data=tuple(
            image
            if image.output_format is not None
            else attrs.evolve(image, output_format=response.output_format)
            for image in response.data
        ),
        request_id=request_id,
        headers=headers if headers is not None else {},
        raw=data,
    )
