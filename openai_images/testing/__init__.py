"""A local server that answers like the OpenAI Images API, with real images, for tests.

Think moto, but real HTTP on 127.0.0.1: any client (this library's, the official SDK,
curl) sees the API's routes, validation, errors, headers, streams and rate limits, and gets
real PNG, JPEG, WebP, GIF or SVG images back. It models today's API;
``LocalImagesServer(legacy=True)`` also serves the retired models and variations.
Faults are scripted from Python with ``Fault``. Needs Pillow
(``pip install 'openai-images[server]'``).

Example:
    ```python
    async with LocalImagesServer() as server:
        async with openai_images.AsyncImagesClient(api_key="k", base_url=server.base_url) as c:
            server.inject(Fault(kind="status", status=503))
            result = await c.generate(prompt="a fox", model="gpt-image-2.5-flare", quality="low")
        server.requests[-1].fields["prompt"]
    # -> 'a fox'
    ```
"""

from ._azure import AzureMode
from ._batches import BatchControl, LineFailure
from ._faults import Fault
from ._server import LocalImagesServer, RecordedRequest

__all__ = [
    "AzureMode",
    "BatchControl",
    "Fault",
    "LineFailure",
    "LocalImagesServer",
    "RecordedRequest",
]
