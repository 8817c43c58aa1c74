"""openai-images: an async-first client for the OpenAI Images API.

Example:
    ```python
    import openai_images
    async with openai_images.AsyncImagesClient() as client:
        result = await client.generate(prompt="a red fox", model="gpt-image-1.5")
    ```
"""

from ._azure import AzureSettingsError, MissingAzureCredentialError
from ._azure_client import AsyncAzureImagesClient, AzureImagesClient
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
from ._batch_api import (
    BatchAPI,
    BatchAPIJob,
    BatchAPIProgress,
    BatchAPIReport,
    BatchLineError,
    RemoteBatch,
)
from ._client import AsyncImagesClient, RequestOptions
from ._config import ClientCertificate, Timeout
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    InsufficientQuotaError,
    InternalServerError,
    InvalidImageDataError,
    MissingAPIKeyError,
    ModerationBlockedError,
    ModerationDetails,
    NotFoundError,
    OpenAIImagesError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    ResponseTooLargeError,
    UnprocessableEntityError,
    Violation,
)
from ._raw import RawResponse
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
    "AsyncAzureImagesClient",
    "AsyncBatchIterator",
    "AsyncImageStream",
    "AsyncImagesClient",
    "AuthenticationError",
    "AzureImagesClient",
    "AzureSettingsError",
    "BadRequestError",
    "BatchAPI",
    "BatchAPIJob",
    "BatchAPIProgress",
    "BatchAPIReport",
    "BatchIterator",
    "BatchLineError",
    "BatchProgress",
    "BatchReport",
    "BatchResult",
    "BatchSummary",
    "ClientCertificate",
    "ClientClosedError",
    "ConflictError",
    "EditRequest",
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
    "InvalidImageDataError",
    "MissingAPIKeyError",
    "MissingAzureCredentialError",
    "ModerationBlockedError",
    "ModerationDetails",
    "NotFoundError",
    "OpenAIImagesError",
    "OutputTokensDetails",
    "PermissionDeniedError",
    "ProgressBar",
    "RateLimitError",
    "RawResponse",
    "RemoteBatch",
    "RequestOptions",
    "RequestValidationError",
    "ResponseTooLargeError",
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
