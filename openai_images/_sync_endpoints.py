"""The endpoints' keyword methods for synchronous code, which ``ImagesClient`` inherits.

Each method runs its async twin (``AsyncEndpoints``) on the client's ``Runner``, and wraps
a stream it returns in an ``ImageStream``. The methods are written by ``tools/unasync.py``
from ``AsyncEndpoints``' (themselves generated from the request classes): edit those, not
the region it writes.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, cast, overload

from typing_extensions import deprecated

from ._streaming import AsyncImageStream
from ._sync_streaming import ImageStream

if TYPE_CHECKING:
    from ._endpoints import AsyncEndpoints
    from ._runner import Runner

# ---- BEGIN GENERATED IMPORTS (tools/unasync.py; do not edit by hand) ----
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence
    from typing import Any, Literal

    from ._config import Timeout
    from ._requests import (
        Background,
        Complexity,
        ImageInput,
        ImageRef,
        InputFidelity,
        Moderation,
        OutputFormat,
        Quality,
        ResponseFormat,
        Style,
        SvgOptions,
    )
    from ._responses import ImageEditStreamEvent, ImageGenStreamEvent, ImagesResponse
# ---- END GENERATED IMPORTS ----

__all__ = ["SyncEndpoints"]


class SyncEndpoints(abc.ABC):
    """The keyword methods of the endpoints, for a client that runs an async one."""

    _runner: Runner

    @property
    @abc.abstractmethod
    def _async(self) -> AsyncEndpoints:
        """The async client whose calls these are (a new one after a fork)."""

    # ---- BEGIN GENERATED METHODS (tools/unasync.py; do not edit by hand) ----

    @overload
    def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        style: Style | None = None,
        user: str | None = None,
        safety_identifier: str | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: SvgOptions | None = None,
        stream: Literal[False] = False,
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse: ...

    @overload
    def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        style: Style | None = None,
        user: str | None = None,
        safety_identifier: str | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: SvgOptions | None = None,
        stream: Literal[True],
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImageStream[ImageGenStreamEvent]: ...

    def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        style: Style | None = None,
        user: str | None = None,
        safety_identifier: str | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: SvgOptions | None = None,
        stream: bool = False,
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse | ImageStream[ImageGenStreamEvent]:
        """Create images from a prompt (``POST /images/generations``).

        With ``stream=True`` (GPT image models) it returns an ``ImageStream``
        of partial and completed events once the response has begun.

        Args:
            prompt: What to make, in words.
            model: The model, e.g. ``"gpt-image-2"`` (name one: the API no longer picks).
            n: How many images to make.
            size: ``"1024x1024"``, ``"1536x1024"``, ``"auto"``... or ``WIDTHxHEIGHT`` where the
                model takes custom sizes.
            quality: ``"low"``, ``"medium"``, ``"high"``, ``"auto"`` (``"xhigh"``, ``"max"`` on
                the 2.5 models; ``"standard"``, ``"hd"`` for dall-e-3).
            background: ``"transparent"``, ``"opaque"`` or ``"auto"``.
            moderation: ``"low"`` or ``"auto"``.
            output_format: ``"png"``, ``"jpeg"``, ``"webp"``, ``"gif"`` or ``"svg"``.
            output_compression: 0-100, for jpeg and webp output.
            response_format: ``"url"`` or ``"b64_json"`` (legacy dall-e models).
            style: ``"vivid"`` or ``"natural"`` (dall-e-3).
            user: A stable end-user id (deprecated: use ``safety_identifier``).
            safety_identifier: A stable, hashed end-user id for abuse monitoring.
            complexity: Planning effort, ``"low"``, ``"medium"`` or ``"high"``.
            frame_count: Frames of a gif result, 2-16.
            frame_duration_ms: Milliseconds per gif frame.
            svg: Who authors an svg result (``output_format="svg"`` only).
            stream: Stream partial images as events (GPT image models).
            partial_images: Partial images to stream before the final one, 0-3.
            timeout: Seconds for this call, or a ``Timeout``; the client's if unset.
            max_retries: Retries for this call; the client's if unset.
            extra_headers: Headers added to this request.
            extra_query: Query parameters added to this request.
            extra_body: Fields added to the body (ones this version lacks).

        Example:
            ```python
            result = client.generate(
                prompt="a watercolor lighthouse", model="gpt-image-2", size="1024x1536"
            )
            result.data[0].save("lighthouse.png")
            ```
        """
        generate = cast(
            "Callable[..., Awaitable[ImagesResponse | AsyncImageStream[ImageGenStreamEvent]]]",
            self._async.generate,
        )
        result = self._runner.run(
            generate,
            prompt=prompt,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            moderation=moderation,
            output_format=output_format,
            output_compression=output_compression,
            response_format=response_format,
            style=style,
            user=user,
            safety_identifier=safety_identifier,
            complexity=complexity,
            frame_count=frame_count,
            frame_duration_ms=frame_duration_ms,
            svg=svg,
            stream=stream,
            partial_images=partial_images,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        if isinstance(result, AsyncImageStream):
            return ImageStream(result, self._runner)
        return result

    @overload
    def edit(
        self,
        *,
        prompt: str,
        image: ImageInput | list[ImageInput] | None = None,
        images: Sequence[ImageRef] | None = None,
        mask: ImageInput | ImageRef | None = None,
        markup: ImageInput | None = None,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        input_fidelity: InputFidelity | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        safety_identifier: str | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: SvgOptions | None = None,
        stream: Literal[False] = False,
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse: ...

    @overload
    def edit(
        self,
        *,
        prompt: str,
        image: ImageInput | list[ImageInput] | None = None,
        images: Sequence[ImageRef] | None = None,
        mask: ImageInput | ImageRef | None = None,
        markup: ImageInput | None = None,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        input_fidelity: InputFidelity | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        safety_identifier: str | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: SvgOptions | None = None,
        stream: Literal[True],
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImageStream[ImageEditStreamEvent]: ...

    def edit(
        self,
        *,
        prompt: str,
        image: ImageInput | list[ImageInput] | None = None,
        images: Sequence[ImageRef] | None = None,
        mask: ImageInput | ImageRef | None = None,
        markup: ImageInput | None = None,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: Quality | None = None,
        background: Background | None = None,
        moderation: Moderation | None = None,
        input_fidelity: InputFidelity | None = None,
        output_format: OutputFormat | None = None,
        output_compression: int | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        safety_identifier: str | None = None,
        complexity: Complexity | None = None,
        frame_count: int | None = None,
        frame_duration_ms: int | None = None,
        svg: SvgOptions | None = None,
        stream: bool = False,
        partial_images: int | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse | ImageStream[ImageEditStreamEvent]:
        """Edit or combine images (``POST /images/edits``).

        Uploads go as multipart, streamed from disk; an edit by reference
        (``images=[ImageRef(...)]``, with an ``ImageRef`` mask) goes as JSON.

        Args:
            prompt: What to change, in words.
            image: One input or a list of up to 16: a path, bytes, a binary file, or
                ``(filename, content[, content_type])``. Files stream from disk as they upload.
            images: Inputs by reference (``ImageRef``), for an edit sent as JSON.
            mask: Where to edit: an input (multipart) or an ``ImageRef`` (JSON edits).
            markup: A PNG whose drawn pixels are overlaid on the first image (2.5 models).
            model: The model, e.g. ``"gpt-image-2"`` (name one: the API no longer picks).
            n: How many images to make.
            size: ``"1024x1024"``, ``"1536x1024"``, ``"auto"``... or ``WIDTHxHEIGHT`` where the
                model takes custom sizes.
            quality: ``"low"``, ``"medium"``, ``"high"``, ``"auto"`` (``"xhigh"``, ``"max"`` on
                the 2.5 models).
            background: ``"transparent"``, ``"opaque"`` or ``"auto"``.
            moderation: ``"low"`` or ``"auto"``.
            input_fidelity: How closely to keep the inputs' features, ``"high"`` or ``"low"``.
            output_format: ``"png"``, ``"jpeg"``, ``"webp"``, ``"gif"`` or ``"svg"``.
            output_compression: 0-100, for jpeg and webp output.
            response_format: ``"url"`` or ``"b64_json"`` (legacy dall-e models).
            user: A stable end-user id (deprecated: use ``safety_identifier``).
            safety_identifier: A stable, hashed end-user id for abuse monitoring.
            complexity: Planning effort, ``"low"``, ``"medium"`` or ``"high"``.
            frame_count: Frames of a gif result, 2-16.
            frame_duration_ms: Milliseconds per gif frame.
            svg: Who authors an svg result (``output_format="svg"`` only).
            stream: Stream partial images as events (GPT image models).
            partial_images: Partial images to stream before the final one, 0-3.
            timeout: Seconds for this call, or a ``Timeout``; the client's if unset.
            max_retries: Retries for this call; the client's if unset.
            extra_headers: Headers added to this request.
            extra_query: Query parameters added to this request.
            extra_body: Fields added to the body (ones this version lacks).

        Example:
            ```python
            result = client.edit(
                image=["soap.png", "candle.png"], prompt="a gift basket", model="gpt-image-2"
            )
            ```
        """
        edit = cast(
            "Callable[..., Awaitable[ImagesResponse | AsyncImageStream[ImageEditStreamEvent]]]",
            self._async.edit,
        )
        result = self._runner.run(
            edit,
            prompt=prompt,
            image=image,
            images=images,
            mask=mask,
            markup=markup,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            moderation=moderation,
            input_fidelity=input_fidelity,
            output_format=output_format,
            output_compression=output_compression,
            response_format=response_format,
            user=user,
            safety_identifier=safety_identifier,
            complexity=complexity,
            frame_count=frame_count,
            frame_duration_ms=frame_duration_ms,
            svg=svg,
            stream=stream,
            partial_images=partial_images,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        if isinstance(result, AsyncImageStream):
            return ImageStream(result, self._runner)
        return result

    @deprecated("create_variation: /images/variations is retired at OpenAI; use edit()")
    def create_variation(
        self,
        *,
        image: ImageInput,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        response_format: ResponseFormat | None = None,
        user: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ImagesResponse:
        """Make variations of an image (``POST /images/variations``, dall-e-2).

        The endpoint is retired at OpenAI; compatible servers may still serve it.

        Args:
            image: The square PNG to vary: a path, bytes, a binary file, or ``(filename,
                content[, content_type])``.
            model: ``"dall-e-2"``, the only model the endpoint served.
            n: How many variations to make.
            size: ``"256x256"``, ``"512x512"`` or ``"1024x1024"``.
            response_format: ``"url"`` or ``"b64_json"``.
            user: A stable end-user id.
            timeout: Seconds for this call, or a ``Timeout``; the client's if unset.
            max_retries: Retries for this call; the client's if unset.
            extra_headers: Headers added to this request.
            extra_query: Query parameters added to this request.
            extra_body: Fields added to the body (ones this version lacks).

        Example:
            ```python
            result = client.create_variation(image="cat.png", n=2)
            ```
        """
        return self._runner.run(
            self._async.create_variation,
            image=image,
            model=model,
            n=n,
            size=size,
            response_format=response_format,
            user=user,
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )

    # ---- END GENERATED METHODS ----
