"""HarborAI-style client under test (SPEC section 3). Imports nothing from harborbench.

Quick use::

    from harborbench.harborai import create_fast_client

    with create_fast_client(base_url="http://127.0.0.1:8000/v1") as client:
        reply = client.chat.completions.create(
            model="mock-model", messages=[{"role": "user", "content": "hi"}]
        )
        print(reply.choices[0].message.content, reply.usage)
"""

from typing import TYPE_CHECKING, Any

from .config import ClientConfig, ResolvedConfig, parse_config, resolve_config, validate_config
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

if TYPE_CHECKING:
    from .client import FastHarborAI, create_fast_client


def __getattr__(name: str) -> Any:
    """The client itself (aiohttp, urllib3) is imported on first use: the config model and the
    errors are light, and harborbench's profile schema imports them at start-up."""
    if name in ("FastHarborAI", "create_fast_client"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "ResolvedConfig",
    "StreamError",
    "UnknownModelError",
    "Usage",
    "create_fast_client",
    "parse_config",
    "resolve_config",
    "validate_config",
]
