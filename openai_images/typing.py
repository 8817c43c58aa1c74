"""The types that appear in openai-images' public signatures, for your own annotations.

Example:
    ```python
    from openai_images.typing import ImageInput, OutputFormat

    def edit_request(image: ImageInput, fmt: OutputFormat = "png") -> EditRequest: ...
    ```
"""

from ._batch import KeyFunction, ProgressCallback
from ._requests import (
    Background,
    Complexity,
    Endpoint,
    FileContent,
    ImageInput,
    InputFidelity,
    Moderation,
    OutputFormat,
    Quality,
    ReasoningEffort,
    ResponseFormat,
    Style,
)

__all__ = [
    "Background",
    "Complexity",
    "Endpoint",
    "FileContent",
    "ImageInput",
    "InputFidelity",
    "KeyFunction",
    "Moderation",
    "OutputFormat",
    "ProgressCallback",
    "Quality",
    "ReasoningEffort",
    "ResponseFormat",
    "Style",
]
