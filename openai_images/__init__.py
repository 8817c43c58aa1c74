"""openai-images: an async-first client for the OpenAI Images API.

Example:
    ```python
    import openai_images
    async with openai_images.AsyncImagesClient() as client:
        result = await client.generate(prompt="a red fox", model="gpt-image-1")
    ```
"""

from ._batch import (
    AsyncBatchIterator,
    BatchIterator,
    BatchProgress,
    BatchReport,
    BatchResult,
    BatchSummary,
    ProgressBar,
    progress_bar,
)
from ._client import AsyncImagesClient, ExchangeObserver, RequestOptions
from ._config import Timeout
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InsufficientQuotaError,
    InternalServerError,
    MissingAPIKeyError,
    ModerationBlockedError,
    ModerationDetails,
    NotFoundError,
    OpenAIImagesError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    UnprocessableEntityError,
    Violation,
)
from ._requests import (
    EditRequest,
    GenerateRequest,
    ImageRef,
    ImageRequest,
    SvgOptions,
    SvgReasoning,
    VariationRequest,
)
from ._responses import (
    Image,
    ImageEditCompletedEvent,
    ImageEditPartialImageEvent,
    ImageEditStreamEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
    ImageGenStreamEvent,
    ImagesResponse,
    InputTokensDetails,
    OutputTokensDetails,
    SvgUsage,
    Usage,
)
from ._streaming import AsyncImageStream
from ._sync import ImagesClient, ImageStream
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncBatchIterator",
    "AsyncImageStream",
    "AsyncImagesClient",
    "AuthenticationError",
    "BadRequestError",
    "BatchIterator",
    "BatchProgress",
    "BatchReport",
    "BatchResult",
    "BatchSummary",
    "ConflictError",
    "EditRequest",
    "ExchangeObserver",
    "GenerateRequest",
    "Image",
    "ImageEditCompletedEvent",
    "ImageEditPartialImageEvent",
    "ImageEditStreamEvent",
    "ImageGenCompletedEvent",
    "ImageGenPartialImageEvent",
    "ImageGenStreamEvent",
    "ImageRef",
    "ImageRequest",
    "ImageStream",
    "ImagesClient",
    "ImagesResponse",
    "InputTokensDetails",
    "InsufficientQuotaError",
    "InternalServerError",
    "MissingAPIKeyError",
    "ModerationBlockedError",
    "ModerationDetails",
    "NotFoundError",
    "OpenAIImagesError",
    "OutputTokensDetails",
    "PermissionDeniedError",
    "ProgressBar",
    "RateLimitError",
    "RequestOptions",
    "RequestValidationError",
    "SvgOptions",
    "SvgReasoning",
    "SvgUsage",
    "Timeout",
    "UnprocessableEntityError",
    "Usage",
    "VariationRequest",
    "Violation",
    "__version__",
    "progress_bar",
]
