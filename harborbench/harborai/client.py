"""FastHarborAI: the client under test (SPEC section 3), in optimized or traditional mode.

Optimized mode runs on one event loop: the loop of the first ``await acreate(...)``, or, when the
first call is the synchronous ``create(...)``, a private event-loop thread owned by the client.
Calls from any other loop or thread are forwarded to that loop, so a client has exactly one set
of components and one in-flight limit. Traditional mode runs every call on its thread pool.

Routing: a model named in a ``providers`` table goes to that provider; any other model goes to
the top-level ``base_url`` if there is one, else the call raises UnknownModelError listing the
known models. Providers are plugins of the plugin manager (lock-free or locked), created on first
use when ``enable_lazy_loading`` is on, at construction otherwise.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Literal, overload

from .config import ClientConfig, ResolvedConfig, resolve_config
from .core.optimizations.concurrency_manager import ConcurrencyManager
from .core.optimizations.lockfree_plugin_manager import LockedPluginRegistry, LockFreePluginManager
from .core.provider import DEFAULT_ROUTE, ProviderPlugin, RequestSpec, build_body, make_plugin
from .errors import ClientClosedError, HarborAIError, UnknownModelError
from .traditional import TraditionalEngine
from .types import ChatCompletion, ChatCompletionChunk, StringPool

__all__ = ["FastHarborAI", "create_fast_client"]

_STRING_POOL_ENTRIES = 256

# RequestSpec(plugin, body, stream) without calling the class: a named tuple's __new__ is a
# Python function reached through the type's slot, about 1.3k instructions more a request
# (measured with valgrind); tuple.__new__ builds the same RequestSpec.
_new_spec = tuple.__new__


def _identity(value: str) -> str:
    return value


class _LoopThread:
    """A private event loop running in a daemon thread, owned by one client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(ready,), name="harborai-loop", daemon=True
        )
        self.thread.start()
        ready.wait()

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def stop(self) -> None:
        """Stop the loop, join the thread, close the loop (call after the manager stopped)."""
        loop = self.loop
        if loop.is_closed():
            return
        fut = asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop)
        fut.result()
        loop.call_soon_threadsafe(loop.stop)
        self.thread.join()
        loop.close()


class _SyncBridgeStream:
    """Sync iterator over an AsyncChunkStream that lives on another thread's loop."""

    def __init__(self, stream: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop
        self._done = False

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self

    def __next__(self) -> ChatCompletionChunk:
        if self._done:
            raise StopIteration
        fut = asyncio.run_coroutine_threadsafe(self._stream.__anext__(), self._loop)
        try:
            chunk: ChatCompletionChunk = fut.result()
        except StopAsyncIteration:
            self._done = True
            raise StopIteration from None
        except BaseException:
            self._done = True
            raise
        return chunk

    @property
    def done_marker_missing(self) -> bool:
        """Whether the stream ended cleanly after a finish_reason without ``data: [DONE]``."""
        return bool(self._stream.done_marker_missing)

    def close(self) -> None:
        """Stop early and release the connection and the in-flight slot."""
        if not self._done and not self._loop.is_closed():
            self._done = True
            asyncio.run_coroutine_threadsafe(self._stream.aclose(), self._loop).result()

    def __enter__(self) -> _SyncBridgeStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _ForeignAsyncStream:
    """Async iterator, for one loop, over an AsyncChunkStream living on another loop."""

    def __init__(self, stream: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        fut = asyncio.run_coroutine_threadsafe(self._stream.__anext__(), self._loop)
        chunk: ChatCompletionChunk = await asyncio.wrap_future(fut)
        return chunk

    @property
    def done_marker_missing(self) -> bool:
        """Whether the stream ended cleanly after a finish_reason without ``data: [DONE]``."""
        return bool(self._stream.done_marker_missing)

    async def aclose(self) -> None:
        """Stop early and release the connection and the in-flight slot."""
        fut = asyncio.run_coroutine_threadsafe(self._stream.aclose(), self._loop)
        await asyncio.wrap_future(fut)

    async def __aenter__(self) -> _ForeignAsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Completions:
    """``client.chat.completions``: ``create`` (sync), ``acreate`` / ``create_async`` (async)."""

    def __init__(self, client: FastHarborAI) -> None:
        self._client = client

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[False] = False,
        request_priority: int = 0,
        **params: Any,
    ) -> ChatCompletion: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[True],
        request_priority: int = 0,
        **params: Any,
    ) -> Iterator[ChatCompletionChunk]: ...

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool,
        request_priority: int = 0,
        **params: Any,
    ) -> ChatCompletion | Iterator[ChatCompletionChunk]: ...

    def create(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool = False,
        request_priority: int = 0,
        **params: Any,
    ) -> ChatCompletion | Iterator[ChatCompletionChunk]:
        """Send a chat completion and wait for it (blocking).

        Args:
            model: str, the model name (routes to its provider).
            messages: the chat messages, ``[{"role": ..., "content": ...}, ...]``.
            stream: bool; True returns an iterator of ChatCompletionChunk (close it, or read it
                to the end, to free its connection).
            request_priority: int, queue priority in the request processor (lower first); not
                sent to the server.
            **params: further JSON body fields, passed through (max_tokens, temperature,
                stream_options, ...).

        Returns:
            ChatCompletion, or an iterator of chunks when ``stream`` is True.

        Raises:
            UnknownModelError, APIStatusError, APITimeoutError, APIConnectionError, StreamError,
            ClientClosedError, HarborAIError (called from inside the client's own event loop).
        """
        result: ChatCompletion | Iterator[ChatCompletionChunk] = self._client._create(
            model, messages, stream, request_priority, params
        )
        return result

    @overload
    async def acreate(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[False] = False,
        request_priority: int = 0,
        **params: Any,
    ) -> ChatCompletion: ...

    @overload
    async def acreate(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: Literal[True],
        request_priority: int = 0,
        **params: Any,
    ) -> AsyncIterator[ChatCompletionChunk]: ...

    @overload
    async def acreate(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool,
        request_priority: int = 0,
        **params: Any,
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]: ...

    async def acreate(
        self,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        stream: bool = False,
        request_priority: int = 0,
        **params: Any,
    ) -> ChatCompletion | AsyncIterator[ChatCompletionChunk]:
        """Send a chat completion asynchronously; the same arguments as :meth:`create`.

        Returns:
            ChatCompletion, or with ``stream=True`` an async iterator of chunks
            (``async for chunk in await acreate(..., stream=True)``), which also has
            ``aclose()`` and works as ``async with``.

        Raises:
            the same as :meth:`create`.
        """
        # The client's async path is here, not in a coroutine of the client that this one would
        # await: one coroutine frame less on every request.
        client = self._client
        spec = client._spec(model, messages, stream, params)
        result: ChatCompletion | AsyncIterator[ChatCompletionChunk]
        engine = client._traditional
        if engine is not None:
            result = await engine.acreate(spec)
            return result
        running = asyncio.get_running_loop()
        if client._loop is None:
            client._bind(running)
        bound = client._loop
        assert bound is not None
        if bound is running:
            manager = client._manager
            assert manager is not None
            if manager.started and not manager.stopped:  # the hot path, without _dispatch
                deadline = manager.loop_time() + client.config.config.timeout_s
                processor = manager.processor
                if processor is not None:
                    result = await processor.call(spec, request_priority, deadline)
                else:
                    result = await manager.execute(spec, deadline)
            else:
                result = await client._dispatch(spec, request_priority)
            return result
        if bound.is_closed():
            raise HarborAIError(
                "the client's event loop is closed; create one client per event loop"
            )
        fut = asyncio.run_coroutine_threadsafe(client._dispatch(spec, request_priority), bound)
        result = await asyncio.wrap_future(fut)
        return _ForeignAsyncStream(result, bound) if stream else result

    create_async = acreate


class Chat:
    """``client.chat``: holds ``completions``."""

    def __init__(self, client: FastHarborAI) -> None:
        self.completions = Completions(client)


class FastHarborAI:
    """The HarborAI-style client; build it with :func:`create_fast_client`.

    Args:
        config: the resolved configuration (:func:`~.config.resolve_config`), or a config
            dict or :class:`~.config.ClientConfig`, resolved here.

    Raises:
        ConfigError: as :func:`create_fast_client`.

    Use ``client.chat.completions.create(...)`` / ``await ...acreate(...)``, then ``close()`` or
    ``await aclose()`` (or a ``with`` / ``async with`` block). After closing, calls raise
    ClientClosedError.
    """

    def __init__(self, config: ResolvedConfig | ClientConfig | Mapping[str, Any]) -> None:
        start_ns = time.perf_counter_ns()
        if not isinstance(config, ResolvedConfig):
            config = resolve_config(config)
        self.config = config
        self._string_pool = (
            StringPool(_STRING_POOL_ENTRIES) if config.config.enable_memory_optimization else None
        )
        intern = _identity if self._string_pool is None else self._string_pool.intern
        self._intern = intern
        lazy = config.config.enable_lazy_loading
        self._registry: (
            LockFreePluginManager[ProviderPlugin] | LockedPluginRegistry[ProviderPlugin]
        ) = (
            LockFreePluginManager(lazy=lazy)
            if config.plugin_manager.active
            else LockedPluginRegistry(lazy=lazy)
        )
        self._has_default = False
        named = 0
        for provider in config.targets:
            models = provider.models or (DEFAULT_ROUTE,)
            self._has_default |= not provider.models
            named += bool(provider.models)
            self._registry.register(provider.name, models, partial(make_plugin, provider))
        self._route_all = named == 0
        self._traditional = (
            TraditionalEngine(config, intern) if config.mode == "traditional" else None
        )
        self._manager: ConcurrencyManager | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: _LoopThread | None = None
        self._bind_lock = threading.Lock()
        self._closed = False
        self.chat = Chat(self)
        self.startup_s = (time.perf_counter_ns() - start_ns) / 1e9

    # --- request path -----------------------------------------------------------------------
    def _spec(
        self, model: str, messages: Any, stream: bool, params: Mapping[str, Any]
    ) -> RequestSpec:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new one")
        registry = self._registry
        if self._route_all:
            plugin = registry.get(DEFAULT_ROUTE)
        else:
            try:
                plugin = registry.get(model)
            except UnknownModelError:
                if not self._has_default:
                    raise
                plugin = registry.get(DEFAULT_ROUTE)
        return _new_spec(RequestSpec, (plugin, build_body(model, messages, stream, params), stream))

    async def _dispatch(self, spec: RequestSpec, priority: int) -> Any:
        """Run on the bound loop: the optimized path of one request."""
        manager = self._manager
        assert manager is not None
        if not manager.started:
            await manager.start()
        if manager.stopped:
            raise ClientClosedError("the client is closed; create a new one")
        deadline = manager.deadline()  # timeout_s bounds the whole call, retries included
        processor = manager.processor
        if processor is not None:
            return await processor.call(spec, priority, deadline)
        return await manager.execute(spec, deadline)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._bind_lock:
            if self._loop is None:
                self._manager = ConcurrencyManager(self.config, self._intern)
                self._loop = loop

    def _create(
        self, model: str, messages: Any, stream: bool, priority: int, params: Mapping[str, Any]
    ) -> Any:
        spec = self._spec(model, messages, stream, params)
        engine = self._traditional
        if engine is not None:
            return engine.create(spec)
        if self._loop is None:
            with self._bind_lock:
                if self._loop is None:
                    self._loop_thread = _LoopThread()
                    self._manager = ConcurrencyManager(self.config, self._intern)
                    self._loop = self._loop_thread.loop
        bound = self._loop
        assert bound is not None
        if bound.is_closed():
            raise HarborAIError(
                "the client's event loop is closed; create one client per event loop"
            )
        if _running_loop() is bound:
            raise HarborAIError(
                "create() was called inside the event loop that runs this client; "
                "use 'await client.chat.completions.acreate(...)' there"
            )
        fut = asyncio.run_coroutine_threadsafe(self._dispatch(spec, priority), bound)
        result = fut.result()
        return _SyncBridgeStream(result, bound) if stream else result

    # --- status -----------------------------------------------------------------------------
    def optimization_status(self) -> dict[str, Any]:
        """Which components are active and why, the resolved mode, lazy loading and memory.

        Returns:
            ``{"mode", "mode_reason", "performance_mode", "max_concurrent_requests",
            "connection_pool_size", "components": {name: {"active", "reason"}} for
            lockfree_plugin_manager, optimized_connection_pool, async_request_processor and
            concurrency_manager, "lazy_loading": {"enabled", "registered", "loaded"},
            "memory_optimization": {"enabled", "interned_strings", "max_interned_strings",
            "effect"}}``.
        """
        cfg = self.config
        keys = cfg.config
        loaded = sorted(self._registry.loaded_plugins())
        memory: dict[str, Any] = {
            "enabled": keys.enable_memory_optimization,
            "interned_strings": 0 if self._string_pool is None else len(self._string_pool),
            "max_interned_strings": 0 if self._string_pool is None else _STRING_POOL_ENTRIES,
            "effect": (
                "repeated response strings (model, role, finish_reason) share one instance "
                "through a bounded cache"
                if keys.enable_memory_optimization
                else "none: every response keeps its own strings"
            ),
        }
        return {
            "mode": cfg.mode,
            "mode_reason": cfg.mode_reason,
            "performance_mode": keys.performance_mode,
            "max_concurrent_requests": cfg.limits.max_concurrent_requests,
            "connection_pool_size": cfg.limits.connection_pool_size,
            # The adaptive pool grows on demand up to its max_size: that is its cap on connections.
            "connection_pool_max_size": (
                cfg.limits.pool_max_size
                if cfg.mode == "optimized"
                and cfg.connection_pool.active
                and keys.connection_pool.adaptive
                else None
            ),
            "components": {
                "lockfree_plugin_manager": _decision(cfg.plugin_manager),
                "optimized_connection_pool": _decision(cfg.connection_pool),
                "async_request_processor": _decision(cfg.request_processor),
                "concurrency_manager": _decision(cfg.concurrency_manager),
            },
            "lazy_loading": {
                "enabled": keys.enable_lazy_loading,
                "registered": sorted(self._registry.plugin_names()),
                "loaded": loaded,
            },
            "memory_optimization": memory,
        }

    def get_statistics(self) -> dict[str, Any]:
        """Counters of every active component.

        Returns:
            ``{"mode", "startup_s", "plugin_manager": {...}}`` plus, in optimized mode (once a
            request was sent), ``concurrency_manager``, ``connection_pool`` and
            ``request_processor`` (when active), or in traditional mode ``traditional``.
            Read it from the client's loop or after the load stopped: counters of a running
            loop are read without synchronisation.
        """
        out: dict[str, Any] = {
            "mode": self.config.mode,
            "startup_s": self.startup_s,
            "plugin_manager": self._registry.statistics(),
        }
        if self._traditional is not None:
            out["traditional"] = self._traditional.statistics()
        elif self._manager is not None:
            out.update(self._manager.statistics())
        return out

    # --- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the client: stop the components, close every session and thread.

        Raises:
            HarborAIError: called inside the running event loop the client is bound to (use
                ``await aclose()`` there).
        """
        if self._closed:
            return
        loop = self._loop
        if loop is not None and _running_loop() is loop:
            raise HarborAIError("close() inside the client's event loop; use 'await aclose()'")
        self._closed = True
        if self._traditional is not None:
            self._traditional.close()
            return
        manager = self._manager
        if manager is None or loop is None or loop.is_closed():
            return
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(manager.stop(), loop).result()
        else:
            loop.run_until_complete(manager.stop())
        if self._loop_thread is not None:
            self._loop_thread.stop()

    async def aclose(self) -> None:
        """Close the client from async code; the same effects as :meth:`close`."""
        if self._closed:
            return
        self._closed = True
        if self._traditional is not None:
            await asyncio.to_thread(self._traditional.close)
            return
        manager, loop = self._manager, self._loop
        if manager is None or loop is None or loop.is_closed():
            return
        if loop is asyncio.get_running_loop():
            await manager.stop()
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(manager.stop(), loop))
        if self._loop_thread is not None:
            await asyncio.to_thread(self._loop_thread.stop)

    def __enter__(self) -> FastHarborAI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> FastHarborAI:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _decision(decision: Any) -> dict[str, Any]:
    return {"active": decision.active, "reason": decision.reason}


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def create_fast_client(
    config: ClientConfig | Mapping[str, Any] | None = None, **overrides: Any
) -> FastHarborAI:
    """Create a client from a config dict (see :mod:`.config`) and keyword overrides.

    Args:
        config: the config mapping, a validated :class:`~.config.ClientConfig` (not validated
            again), or None.
        **overrides: top-level keys that replace (mappings: deep-merge into) ``config``, for
            example ``base_url="http://127.0.0.1:8000/v1"``.

    Returns:
        the FastHarborAI client.

    Raises:
        ConfigError: unknown key or bad value (named by its dotted path), no target, a bad
            ``HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION`` value, or (lazy loading off) a
            provider whose ``api_key_env`` is not set.
    """
    return FastHarborAI(resolve_config(config, **overrides))
