"""Every rule of the contract, refused by the local server with the offending param."""

from __future__ import annotations

from typing import Any

import aiohttp
import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openai_images.testing import LocalImagesServer

from ._support import assert_error, bomb_png, data_url, form, picture

pytestmark = pytest.mark.anyio

PNG = picture(64, 64)
WIDE = picture(64, 32)
JPEG = picture(64, 64, fmt="JPEG")
GIF = picture(64, 64, fmt="GIF")
MASK = picture(64, 64, alpha=True)
SMALL_MASK = picture(32, 32, alpha=True)
OPAQUE_MASK = picture(64, 64)
JPEG_MASK = picture(64, 64, fmt="JPEG")

File = tuple[str, str, bytes, str]


@attrs.frozen(kw_only=True)
class Case:
    """One request that breaks one rule, and what the server must name."""

    endpoint: str
    param: str | None
    code: str | None = None
    json: Any = None
    fields: dict[str, str] | None = None
    files: tuple[File, ...] = ()
    raw: tuple[bytes, str] | None = None


def image(data: bytes = PNG, *, part: str = "image", kind: str = "image/png") -> File:
    """A file part."""
    return (part, f"{part.strip('[]')}.bin", data, kind)


def gen(param: str | None, code: str | None = None, **body: Any) -> Case:
    """A generation with a JSON body."""
    return Case(endpoint="generations", param=param, code=code, json=body)


def edit(param: str | None, code: str | None = None, *files: File, **fields: str) -> Case:
    """A multipart edit."""
    return Case(endpoint="edits", param=param, code=code, fields=fields, files=files)


def json_edit(param: str | None, code: str | None = None, **body: Any) -> Case:
    """A JSON edit."""
    return Case(endpoint="edits", param=param, code=code, json=body)


def variation(param: str | None, code: str | None = None, *files: File, **fields: str) -> Case:
    """A multipart variation."""
    return Case(endpoint="variations", param=param, code=code, fields=fields, files=files)


MISSING = "missing_required_parameter"
INVALID = "invalid_value"
UNSUPPORTED = "unsupported_parameter"
UNKNOWN = "unknown_parameter"
TYPE = "invalid_type"
D2 = {"model": "dall-e-2"}
D3 = {"model": "dall-e-3"}
GPT = {"model": "gpt-image-1.5"}
SUNBURST = {"model": "gpt-image-2.5-sunburst"}
REF = {"image_url": data_url(PNG)}

CASES = {
    # prompt
    "no prompt": gen("prompt", MISSING),
    "empty prompt": gen("prompt", MISSING, prompt=""),
    "dall-e-2 prompt over 1000": gen("prompt", "string_above_max_length", prompt="x" * 1001, **D2),
    "dall-e-3 prompt over 4000": gen("prompt", "string_above_max_length", prompt="x" * 4001, **D3),
    "gpt prompt over 32000": gen("prompt", "string_above_max_length", prompt="x" * 32001, **GPT),
    # n
    "n zero": gen("n", INVALID, prompt="p", n=0),
    "n eleven": gen("n", INVALID, prompt="p", n=11, **GPT),
    "dall-e-3 n two": gen("n", INVALID, prompt="p", n=2, **D3),
    # size
    "dall-e-2 gpt size": gen("size", INVALID, prompt="p", size="1024x1536", **D2),
    "dall-e-3 small size": gen("size", INVALID, prompt="p", size="256x256", **D3),
    "gpt dall-e size": gen("size", INVALID, prompt="p", size="512x512", **GPT),
    "gpt-image-2 not by 16": gen(
        "size", INVALID, prompt="p", size="1000x1000", model="gpt-image-2"
    ),
    "gpt-image-2 too wide": gen("size", INVALID, prompt="p", size="3200x800", model="gpt-image-2"),
    "gpt-image-2 too big": gen("size", INVALID, prompt="p", size="4000x1600", model="gpt-image-2"),
    "gpt-image-2 not a size": gen("size", INVALID, prompt="p", size="big", model="gpt-image-2"),
    # response_format
    "gpt response_format": gen(
        "response_format", UNSUPPORTED, prompt="p", response_format="url", **GPT
    ),
    "dall-e bad response_format": gen(
        "response_format", INVALID, prompt="p", response_format="png", **D2
    ),
    # quality
    "dall-e-2 hd": gen("quality", INVALID, prompt="p", quality="hd", **D2),
    "dall-e-3 low": gen("quality", INVALID, prompt="p", quality="low", **D3),
    "gpt hd": gen("quality", INVALID, prompt="p", quality="hd", **GPT),
    # GPT-only fields on DALL·E
    "dall-e background": gen("background", UNSUPPORTED, prompt="p", background="opaque", **D2),
    "dall-e moderation": gen("moderation", UNSUPPORTED, prompt="p", moderation="low", **D3),
    "dall-e output_format": gen(
        "output_format", UNSUPPORTED, prompt="p", output_format="png", **D2
    ),
    "dall-e compression": gen(
        "output_compression", UNSUPPORTED, prompt="p", output_compression=5, **D2
    ),
    "dall-e stream": gen("stream", UNSUPPORTED, prompt="p", stream=True, **D2),
    "dall-e partial_images": gen("partial_images", UNSUPPORTED, prompt="p", partial_images=1, **D3),
    # GPT values
    "gpt-image-1 output_format gif": gen(
        "output_format", INVALID, prompt="p", output_format="gif", model="gpt-image-1"
    ),
    "compression with png": gen(
        "output_compression", INVALID, prompt="p", output_compression=50, output_format="png", **GPT
    ),
    "compression over 100": gen(
        "output_compression",
        INVALID,
        prompt="p",
        output_compression=101,
        output_format="jpeg",
        **GPT,
    ),
    "transparent jpeg": gen(
        "background", INVALID, prompt="p", background="transparent", output_format="jpeg", **GPT
    ),
    "gpt moderation": gen("moderation", INVALID, prompt="p", moderation="high", **GPT),
    "partial_images four": gen("partial_images", INVALID, prompt="p", partial_images=4, **GPT),
    # style
    "gpt style": gen("style", UNSUPPORTED, prompt="p", style="vivid", **GPT),
    "dall-e-3 bad style": gen("style", INVALID, prompt="p", style="bold", **D3),
    # model, names and types
    "unknown model": gen("model", INVALID, prompt="p", model="dall-e-4"),
    "unknown parameter": gen("seed", UNKNOWN, prompt="p", seed=3),
    "endpoint is not a field": gen("endpoint", UNKNOWN, prompt="p", endpoint="edits"),
    "n as text": gen("n", TYPE, prompt="p", n="2"),
    "n as float": gen("n", TYPE, prompt="p", n=2.0),
    "stream as text": gen("stream", TYPE, prompt="p", stream="yes", **GPT),
    "prompt as number": gen("prompt", TYPE, prompt=5),
    "size as list": gen("size", TYPE, prompt="p", size=[1024, 1024]),
    "body is a list": Case(endpoint="generations", param=None, code=TYPE, json=["prompt"]),
    "body is not json": Case(
        endpoint="generations", param=None, raw=(b"{prompt", "application/json")
    ),
    # multipart edits: models and fields
    "dall-e-3 edit": edit("model", "unsupported_model", image(), prompt="p", **D3),
    "mini input_fidelity": edit(
        "input_fidelity",
        INVALID,
        image(),
        prompt="p",
        input_fidelity="high",
        model="gpt-image-1-mini",
    ),
    "dall-e-2 input_fidelity": edit(
        "input_fidelity", UNSUPPORTED, image(), prompt="p", input_fidelity="low", **D2
    ),
    "gpt edit response_format": edit(
        "response_format", UNSUPPORTED, image(), prompt="p", response_format="url", **GPT
    ),
    "edit without prompt": edit("prompt", MISSING, image(), **GPT),
    "edit without image": edit("image", MISSING, prompt="p"),
    "n not decimal": edit("n", TYPE, image(), prompt="p", n="two"),
    "stream not boolean": edit("stream", TYPE, image(), prompt="p", stream="maybe"),
    "unknown text field": edit("colour", UNKNOWN, image(), prompt="p", colour="red"),
    "unknown file field": edit("photo", UNKNOWN, image(part="photo"), prompt="p"),
    "image as text": edit("image", TYPE, prompt="p", image="a.png"),
    "prompt as a file": edit("prompt", TYPE, image(), image(part="prompt")),
    "images in multipart": edit("images", TYPE, image(), prompt="p", images="[]"),
    # multipart edits: the files
    "seventeen images": edit("image", INVALID, *[image(part="image[]")] * 17, prompt="p", **GPT),
    "dall-e-2 two images": edit("image", INVALID, image(), image(), prompt="p", **D2),
    "dall-e-2 not square": edit("image", INVALID, image(WIDE), prompt="p", **D2),
    "dall-e-2 jpeg": edit("image", INVALID, image(JPEG, kind="image/jpeg"), prompt="p", **D2),
    "gif": edit("image", INVALID, image(GIF), prompt="p", **GPT),
    "second image gif": edit(
        "image[1]", INVALID, image(part="image[]"), image(GIF, part="image[]"), prompt="p", **GPT
    ),
    "octet-stream part": edit(
        "image", "unsupported_file_mimetype", image(kind="application/octet-stream"), prompt="p"
    ),
    "not an image": edit("image", "invalid_image_file", image(b"hello, not a png"), prompt="p"),
    "truncated png": edit("image", "invalid_image_file", image(PNG[:60]), prompt="p"),
    "decompression bomb": edit("image", "invalid_image_file", image(bomb_png()), prompt="p"),
    "mask not png": edit("mask", INVALID, image(), image(JPEG_MASK, part="mask"), prompt="p"),
    "mask without alpha": edit(
        "mask", INVALID, image(), image(OPAQUE_MASK, part="mask"), prompt="p"
    ),
    "mask of another size": edit(
        "mask", INVALID, image(), image(SMALL_MASK, part="mask"), prompt="p"
    ),
    "two masks": edit(
        "mask", INVALID, image(), image(MASK, part="mask"), image(MASK, part="mask"), prompt="p"
    ),
    "malformed multipart": Case(
        endpoint="edits", param=None, raw=(b"garbage", "multipart/form-data; boundary=xyz")
    ),
    "multipart without boundary": Case(
        endpoint="edits", param=None, raw=(b"--x--", "multipart/form-data")
    ),
    # JSON edits
    "dall-e-2 json edit": json_edit("model", INVALID, prompt="p", images=[REF], **D2),
    "no references": json_edit("images", INVALID, prompt="p", images=[]),
    "json edit without images": json_edit("images", MISSING, prompt="p"),
    "seventeen references": json_edit(
        "images", INVALID, prompt="p", images=[{"file_id": "f"}] * 17
    ),
    "reference with both": json_edit(
        "images[0]", INVALID, prompt="p", images=[REF | {"file_id": "f"}]
    ),
    "empty reference": json_edit("images[0]", INVALID, prompt="p", images=[{}]),
    "ftp url": json_edit(
        "images[0].image_url", INVALID, prompt="p", images=[{"image_url": "ftp://x/a.png"}]
    ),
    "https url": json_edit(
        "images[0].image_url",
        "invalid_image_url",
        prompt="p",
        images=[{"image_url": "https://x/a.png"}],
    ),
    "file_id": json_edit("images[0].file_id", INVALID, prompt="p", images=[{"file_id": "file-1"}]),
    "bad base64": json_edit(
        "images[0].image_url",
        "invalid_image_url",
        prompt="p",
        images=[{"image_url": "data:image/png;base64,@@"}],
    ),
    "data url without comma": json_edit(
        "images[0].image_url",
        "invalid_image_url",
        prompt="p",
        images=[{"image_url": "data:image/png"}],
    ),
    "data url not an image": json_edit(
        "images[0]", "invalid_image_file", prompt="p", images=[{"image_url": data_url(b"hello")}]
    ),
    "data url octet-stream": json_edit(
        "images[0]",
        "unsupported_file_mimetype",
        prompt="p",
        images=[{"image_url": data_url(PNG, "application/octet-stream")}],
    ),
    "second reference gif": json_edit(
        "images[1]", INVALID, prompt="p", images=[REF, {"image_url": data_url(GIF)}]
    ),
    "json mask of another size": json_edit(
        "mask", INVALID, prompt="p", images=[REF], mask={"image_url": data_url(SMALL_MASK)}
    ),
    "images not a list": json_edit("images", TYPE, prompt="p", images="a.png"),
    "reference not an object": json_edit("images[0]", TYPE, prompt="p", images=["a.png"]),
    "mask not an object": json_edit("mask", TYPE, prompt="p", images=[REF], mask="m.png"),
    "unknown reference field": json_edit(
        "images[0].url", UNKNOWN, prompt="p", images=[{"url": "x"}]
    ),
    "unknown mask field": json_edit(
        "mask.path", UNKNOWN, prompt="p", images=[REF], mask={"path": "x"}
    ),
    "reference url not text": json_edit(
        "images[0].image_url", TYPE, prompt="p", images=[{"image_url": 1}]
    ),
    "image in json": json_edit("image", UNKNOWN, prompt="p", image="a.png"),
    # today's fields
    "xhigh on gpt-image-2": gen(
        "quality", INVALID, prompt="p", quality="xhigh", model="gpt-image-2"
    ),
    "gif streamed": gen("stream", UNSUPPORTED, prompt="p", output_format="gif", stream=True, **GPT),
    "svg partial images": gen(
        "partial_images", UNSUPPORTED, prompt="p", output_format="svg", partial_images=1
    ),
    "gif compression": gen(
        "output_compression", UNSUPPORTED, prompt="p", output_format="gif", output_compression=5
    ),
    "svg of two": gen("n", INVALID, prompt="p", output_format="svg", n=2, **SUNBURST),
    "frame_count without gif": gen("frame_count", UNSUPPORTED, prompt="p", frame_count=3),
    "frame_count seventeen": gen(
        "frame_count", INVALID, prompt="p", output_format="gif", frame_count=17
    ),
    "negative frame duration": gen(
        "frame_duration_ms", INVALID, prompt="p", output_format="gif", frame_duration_ms=-10
    ),
    "svg options without svg": gen("svg", UNSUPPORTED, prompt="p", svg={"model": "m"}),
    "svg without author": gen("svg.model", MISSING, prompt="p", output_format="svg", svg={}),
    "svg unknown option": gen(
        "svg.colour", UNKNOWN, prompt="p", output_format="svg", svg={"model": "m", "colour": 1}
    ),
    "complexity on dall-e-3": gen("complexity", UNSUPPORTED, prompt="p", complexity="low", **D3),
    "bad complexity": gen("complexity", INVALID, prompt="p", complexity="extreme", **SUNBURST),
    "custom size on 2.6": gen(
        "size", INVALID, prompt="p", size="2048x1152", model="gpt-image-2.6-flare"
    ),
    "transparent gif": gen(
        "background", INVALID, prompt="p", background="transparent", output_format="gif", **GPT
    ),
    "gif with a mask": edit(
        "mask", UNSUPPORTED, image(), image(MASK, part="mask"), prompt="p", output_format="gif"
    ),
    "markup with a mask": edit(
        "markup", INVALID, image(), image(MASK, part="mask"), image(MASK, part="markup"), prompt="p"
    ),
    "markup on gpt-image-2": edit(
        "markup", UNSUPPORTED, image(), image(MASK, part="markup"), prompt="p", model="gpt-image-2"
    ),
    "markup without alpha": edit(
        "markup", INVALID, image(), image(OPAQUE_MASK, part="markup"), prompt="p"
    ),
    "markup of another size": edit(
        "markup", INVALID, image(), image(SMALL_MASK, part="markup"), prompt="p", **SUNBURST
    ),
    "markup as jpeg": edit(
        "markup", INVALID, image(), image(JPEG_MASK, part="markup", kind="image/jpeg"), prompt="p"
    ),
    "markup as text": edit("markup", TYPE, image(), prompt="p", markup="m.png"),
    "svg as text": edit("svg", TYPE, image(), prompt="p", svg="m"),
    "svg unknown bracketed": edit(
        "svg.colour", UNKNOWN, image(), prompt="p", **{"svg[colour]": "red", "output_format": "svg"}
    ),
    "input_fidelity on gpt-image-2": edit(
        "input_fidelity",
        UNSUPPORTED,
        image(),
        prompt="p",
        input_fidelity="low",
        model="gpt-image-2",
    ),
    # variations
    "gpt variation": variation("model", "unsupported_model", image(), **GPT),
    "variation of two": variation("image", INVALID, image(), image()),
    "variation n eleven": variation("n", INVALID, image(), n="11"),
    "variation gpt size": variation("size", INVALID, image(), size="1024x1536", **D2),
    "variation without image": variation("image", MISSING, n="1"),
    "variation with prompt": variation("prompt", UNKNOWN, image(), prompt="p"),
    "variation not square": variation("image", INVALID, image(WIDE), **D2),
    "variation as json": Case(
        endpoint="variations", param=None, code="invalid_content_type", json={}
    ),
}


async def send(
    http: aiohttp.ClientSession, server: LocalImagesServer, case: Case
) -> tuple[int, Any]:
    """Send a case's request; return the status and the decoded body."""
    url = f"{server.base_url}/images/{case.endpoint}"
    if case.raw is not None:
        kwargs: dict[str, Any] = {"data": case.raw[0], "headers": {"Content-Type": case.raw[1]}}
    elif case.json is not None:
        kwargs = {"json": case.json}
    else:
        kwargs = {"data": form(case.fields, case.files)}
    async with http.post(url, **kwargs) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_each_rule_is_refused_naming_its_param(
    legacy_server: LocalImagesServer, http: aiohttp.ClientSession, case: Case
) -> None:
    """The server answers 400 in the API's shape, naming the param (and code) of the rule.

    The legacy server serves the retired models too, so their rules are checked as well.
    """
    status, body = await send(http, legacy_server, case)
    assert status == 400, body
    assert_error(body, param=case.param, code=case.code)
    assert body["error"]["type"] == "invalid_request_error"


def values() -> st.SearchStrategy[Any]:
    """Any JSON value, small."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-5, 20)
        | st.floats(allow_nan=False)
        | st.text(max_size=8)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    )


FIELDS = [
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "background",
    "output_format",
    "style",
    "stream",
]


@pytest.mark.parametrize("endpoint", ["generations", "edits"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.dictionaries(
        st.sampled_from([*FIELDS, "images", "mask", "extra"]), values(), max_size=5
    )
)
async def test_arbitrary_json_is_never_a_server_error(
    server: LocalImagesServer, http: aiohttp.ClientSession, endpoint: str, body: dict[str, Any]
) -> None:
    """Whatever JSON object arrives, the answer is a success or an API-shaped 4xx, never a 500."""
    if endpoint == "generations" and "n" not in body:
        body["n"] = 1
    body.setdefault("size", "256x256")
    async with http.post(f"{server.base_url}/images/{endpoint}", json=body) as response:
        answer = await response.json()
        assert response.status in (200, 400), answer
    if response.status == 400:
        assert_error(answer, param=answer["error"]["param"])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300), boundary=st.sampled_from(["xyz", "a" * 70, "--"]))
async def test_arbitrary_multipart_bytes_are_never_a_server_error(
    server: LocalImagesServer, http: aiohttp.ClientSession, body: bytes, boundary: str
) -> None:
    """Random bytes sent as a multipart edit get an API-shaped 400."""
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    payload = f"--{boundary}\r\n".encode() + body
    async with http.post(
        f"{server.base_url}/images/edits", data=payload, headers=headers
    ) as response:
        assert response.status == 400
        assert_error(await response.json(), param=(await response.json())["error"]["param"])
