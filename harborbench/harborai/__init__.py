"""HarborAI-style client under test (SPEC section 3). Imports nothing from harborbench.

Quick use::

    from harborbench.harborai import create_fast_client

    with create_fast_client(base_url="http://127.0.0.1:8000/v1") as client:
        reply = client.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": "hi"}]
        )
        print(reply.choices[0].message.content, reply.usage)
"""

from .client import FastHarborAI, create_fast_client
from .config import ClientConfig, resolve_config, validate_config
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    ConfigError,
    HarborAIError,
    StreamError,
    UnknownModelError,
)
from .types import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    Message,
    Usage,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ChatCompletion",
    "ChatCompletionChunk",
    "Choice",
    "ChunkChoice",
    "ClientClosedError",
    "ClientConfig",
    "ConfigError",
    "Delta",
    "FastHarborAI",
    "HarborAIError",
    "Message",
    "StreamError",
    "UnknownModelError",
    "Usage",
    "create_fast_client",
    "resolve_config",
    "validate_config",
]
