"""The rules table as of November 2026: today's models, retired ones, and the new combinations."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openai_images import EditRequest, GenerateRequest, ImageRef, SvgOptions, VariationRequest
from openai_images._rules import MODELS, check, check_images, legacy_model_note
from openai_images._sniff import ImageInfo

TODAY = [
    "gpt-image-1.5",
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "gpt-image-2.5-sunburst",
    "gpt-image-2.5-sunburst-2026-09-08",
    "gpt-image-2.5-flare",
    "gpt-image-2.5-flare-2026-09-08",
    "gpt-image-2.6-sunburst",
    "gpt-image-2.6-flare",
    "gpt-image-1-mini",
    "chatgpt-image-latest",
]
RETIRED = ["gpt-image-1", "dall-e-2", "dall-e-3"]
THE_2_5S = [name for name in TODAY if name.startswith("gpt-image-2.5")]


def params(request: Any) -> list[str]:
    """The params of every rule ``request`` breaks, in order."""
    return [violation.param for violation in check(request)]


def test_the_table_knows_todays_models_and_the_retired_ones() -> None:
    """Every current model is in the table, current; the three retired ones carry their date."""
    assert sorted(MODELS) == sorted(TODAY + RETIRED)
    assert all(MODELS[name].retired is None for name in TODAY)
    dates = {name: MODELS[name].retired for name in RETIRED}
    assert {name: retired.date for name, retired in dates.items() if retired} == {
        "gpt-image-1": "2026-10-23",
        "dall-e-2": "2026-05-12",
        "dall-e-3": "2026-05-12",
    }


def test_legacy_model_note_names_the_date_and_the_successors() -> None:
    """The note the clients add to a refusal of a retired model; nothing for other models."""
    assert legacy_model_note("gpt-image-1") == (
        "gpt-image-1 was shut down on 2026-10-23; use gpt-image-2.5-sunburst or gpt-image-2.5-flare"
    )
    assert legacy_model_note("dall-e-2") == (
        "dall-e-2 was retired on 2026-05-12; use a current GPT image model such as gpt-image-1.5"
    )
    assert [legacy_model_note(name) for name in [*TODAY, "gpt-image-9", None]] == [None] * 13


@pytest.mark.parametrize("model", RETIRED)
def test_a_retired_model_is_still_checked_and_sent(model: str) -> None:
    """A valid request for a retired model breaks no rule: the server has the last word."""
    assert params(GenerateRequest(prompt="a fox", model=model)) == []


def test_no_hidden_model_default() -> None:
    """Without a model only shared rules apply: no dall-e-2 prompt limit or square PNGs."""
    assert params(GenerateRequest(prompt="x" * 1500)) == []
    assert params(GenerateRequest(prompt="p", quality="xhigh", style="vivid")) == []
    assert params(EditRequest(prompt="x" * 1500, image=b"", response_format="url")) == []
    wide_jpeg = ImageInfo(filename="a.jpg", content_type="image/jpeg", size=10, width=64, height=32)
    assert check_images(VariationRequest(image=b""), [wide_jpeg]) == []
    # What no model makes is still refused.
    assert params(GenerateRequest(prompt="p", size="4000x4000")) == ["size"]
    assert params(GenerateRequest(prompt="p", size="big")) == ["size"]
    assert params(GenerateRequest(prompt="p", n=11)) == ["n"]


@pytest.mark.parametrize("model", TODAY)
def test_todays_models_take_the_new_fields(model: str) -> None:
    """complexity, safety_identifier, and gif and svg outputs on every current model."""
    base = GenerateRequest(prompt="p", model=model, safety_identifier="h1", complexity="high")
    assert params(base) == []
    gif = GenerateRequest(
        prompt="p", model=model, output_format="gif", frame_count=16, frame_duration_ms=700_000
    )
    assert params(gif) == []
    svg = GenerateRequest(prompt="p", model=model, output_format="svg", svg=SvgOptions(model="m"))
    assert params(svg) == []


@pytest.mark.parametrize("model", TODAY)
def test_top_qualities_only_on_the_2_5_models(model: str) -> None:
    """xhigh and max: the 2.5 sunburst and flare models and their snapshots only."""
    expected = [] if model in THE_2_5S else ["quality"]
    for quality in ("xhigh", "max"):
        assert params(GenerateRequest(prompt="p", model=model, quality=quality)) == expected


@pytest.mark.parametrize("model", TODAY)
def test_custom_sizes_per_model(model: str) -> None:
    """WIDTHxHEIGHT sizes: gpt-image-2, its snapshot and the four 2.5 names; not the 2.6s."""
    takes = model.startswith("gpt-image-2-") or model in ("gpt-image-2", *THE_2_5S)
    assert params(GenerateRequest(prompt="p", model=model, size="1536x864")) == (
        [] if takes else ["size"]
    )


@pytest.mark.parametrize(
    ("model", "allowed"),
    [
        ("gpt-image-1.5", {"high", "low"}),
        ("gpt-image-1-mini", {"low"}),
        ("gpt-image-2", set()),
        ("gpt-image-2-2026-04-21", set()),
    ],
)
def test_input_fidelity_per_model(model: str, allowed: set[str]) -> None:
    """high and low on 1.5, only low on the mini, none on gpt-image-2."""
    for fidelity in ("high", "low"):
        request = EditRequest(prompt="p", image=b"", model=model, input_fidelity=fidelity)
        assert params(request) == ([] if fidelity in allowed else ["input_fidelity"])


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"output_format": "gif", "stream": True}, "stream"),
        ({"output_format": "svg", "stream": True}, "stream"),
        ({"output_format": "gif", "partial_images": 0}, "partial_images"),
        ({"output_format": "svg", "partial_images": 2}, "partial_images"),
        ({"output_format": "gif", "output_compression": 50}, "output_compression"),
        ({"output_format": "svg", "output_compression": 50}, "output_compression"),
        ({"output_format": "svg", "n": 2}, "n"),
        ({"frame_count": 4}, "frame_count"),
        ({"output_format": "png", "frame_duration_ms": 100}, "frame_duration_ms"),
        ({"output_format": "gif", "frame_count": 1}, "frame_count"),
        ({"output_format": "gif", "frame_count": 17}, "frame_count"),
        ({"output_format": "gif", "frame_duration_ms": -1}, "frame_duration_ms"),
        ({"svg": SvgOptions(model="m")}, "svg"),
        ({"output_format": "svg", "svg": SvgOptions(model="")}, "svg.model"),
        ({"output_format": "gif", "background": "transparent"}, "background"),
        ({"output_format": "svg", "background": "transparent"}, "background"),
    ],
)
@pytest.mark.parametrize("model", [None, "gpt-image-2.5-flare", "gpt-image-9"])
def test_gif_and_svg_combinations(model: str | None, changes: dict[str, Any], param: str) -> None:
    """The output kinds' rules hold whatever the model (a background needs a known one)."""
    request = GenerateRequest(prompt="p", model=model, **changes)
    expected = [] if param == "background" and model != "gpt-image-2.5-flare" else [param]
    assert params(request) == expected


def test_markup_rules() -> None:
    """markup: 2.5 models only, never with a mask, never in a JSON edit; gif takes no mask."""
    flare = "gpt-image-2.5-flare"
    assert params(EditRequest(prompt="p", image=b"", markup=b"", model=flare)) == []
    assert params(EditRequest(prompt="p", image=b"", markup=b"")) == []
    assert params(EditRequest(prompt="p", image=b"", markup=b"", model="gpt-image-2")) == ["markup"]
    assert params(EditRequest(prompt="p", image=b"", markup=b"", mask=b"", model=flare)) == [
        "markup"
    ]
    by_reference = EditRequest(prompt="p", images=[ImageRef(file_id="f")], markup=b"")
    assert params(by_reference) == ["markup"]
    gif = EditRequest(prompt="p", image=b"", mask=b"", output_format="gif")
    assert params(gif) == ["mask"]


def test_markup_file_rules() -> None:
    """The markup file: a PNG with alpha, as big as the first image."""
    image = ImageInfo(filename="a.png", content_type="image/png", size=9, width=64, height=64)
    good = ImageInfo(
        filename="m.png", content_type="image/png", size=9, width=64, height=64, has_alpha=True
    )
    request = EditRequest(prompt="p", image=b"", markup=b"")
    assert check_images(request, [image], markup=good) == []
    opaque = ImageInfo(
        filename="m.png", content_type="image/png", size=9, width=64, height=64, has_alpha=False
    )
    small = ImageInfo(
        filename="m.png", content_type="image/png", size=9, width=32, height=32, has_alpha=True
    )
    jpeg = ImageInfo(filename="m.jpg", content_type="image/jpeg", size=9, width=64, height=64)
    for bad in (opaque, small, jpeg):
        assert [v.param for v in check_images(request, [image], markup=bad)] == ["markup"]


@given(
    model=st.sampled_from([None, *TODAY, *RETIRED, "gpt-image-9"]),
    output_format=st.sampled_from([None, "png", "jpeg", "webp", "gif", "svg"]),
    quality=st.sampled_from([None, "low", "xhigh", "max", "standard"]),
    n=st.sampled_from([None, 1, 2, 11]),
    frame_count=st.sampled_from([None, 1, 9, 17]),
    complexity=st.sampled_from([None, "low", "high"]),
    stream=st.sampled_from([None, True]),
)
def test_check_names_only_fields_that_exist(**fields: Any) -> None:
    """Any combination gives violations naming real request fields, with a message each."""
    request = GenerateRequest(prompt="p", **fields)
    fields = {attribute.name for attribute in GenerateRequest.__attrs_attrs__}
    for violation in check(request):
        assert violation.param.split(".")[0] in fields
        assert violation.message
