"""Per-request prompts and lengths: what each request of a run sends.

:class:`RequestFactory` gives the keyword arguments of each ``acreate`` call in turn. Unless the
profile fixes the ``messages`` (then every body is the same, on purpose) or draws from a dataset
(whose lines repeat when there are fewer lines than requests), no two requests of a run have the
same body:

- a generated prompt is ``[shared prefix][request tag] [text]``: the shared prefix is
  ``request.prefix_tokens`` x 4 characters (none by default); the request tag is 16 hexadecimal
  characters, a bijective mix of the request's index and the seed, so it differs between any two
  requests of a run; the text is cut from a seeded pseudo-random word corpus at an offset that
  depends on the index. Two prompts therefore share at most the prefix and a few characters of
  the tag (16 characters, about 4 tokens).
- the prompt's length is ``request.prompt_tokens`` (a number or a seeded distribution, drawn per
  request) or the trace's ``input_length``, times :data:`CHARS_PER_TOKEN` characters.
- ``max_tokens`` is drawn per request from ``request.max_tokens``, or is the dataset line's
  ``output_tokens`` or the trace's ``output_length``.

Token counts here are estimates (4 characters a token, the usual rule of thumb for English text
with OpenAI's tokenizers; no tokenizer is run). Every token figure reported comes from the
server's ``usage``; the estimate is reported beside it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from harborbench.counts import make_count_sampler
from harborbench.engine.dataset import load_dataset

if TYPE_CHECKING:
    from harborbench.engine.trace import Trace
    from harborbench.profile.schema import RequestSpec

__all__ = ["CHARS_PER_TOKEN", "DEFAULT_MESSAGES", "TAG_CHARS", "RequestFactory", "prompt_text"]

#: Characters per token assumed when generating a prompt (and when estimating its tokens).
CHARS_PER_TOKEN = 4
#: Characters of the unique request tag that follows the shared prefix.
TAG_CHARS = 16
_CORPUS_CHARS = 1 << 16
_MASK64 = (1 << 64) - 1
_LETTERS = "etaoinshrdlucmfwypvbgk"
#: The request sent when a profile gives no prompt: each request's tag, then this text.
DEFAULT_MESSAGES: tuple[tuple[str, str], ...] = (
    ("user", "Reply with one short sentence about harbors."),
)


def _mix64(x: int) -> int:
    """SplitMix64's finalizer: a bijection of 64-bit integers (Steele, Lea, Flood 2014)."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _words(rng: random.Random, n_chars: int) -> str:
    """Seeded lowercase pseudo-words (2 to 7 letters) separated by spaces, ``n_chars`` long."""
    letters = "".join(rng.choices(_LETTERS, k=n_chars))
    lengths = rng.choices(range(2, 8), k=n_chars // 2 + 1)
    parts: list[str] = []
    at = 0
    for length in lengths:
        if at >= n_chars:
            break
        parts.append(letters[at : at + length])
        at += length + 1
    return " ".join(parts)[:n_chars]


class _Corpus:
    """A seeded text to cut prompts from, and the shared prefix."""

    def __init__(self, seed: int, prefix_tokens: int) -> None:
        rng = random.Random(f"harborbench-corpus:{seed}")
        text = _words(rng, _CORPUS_CHARS)
        self.text = text + " " + text  # a cut at any offset up to len(text) never wraps
        self.size = len(text) + 1
        prefix_rng = random.Random(f"harborbench-prefix:{seed}")
        self.prefix = _words(prefix_rng, prefix_tokens * CHARS_PER_TOKEN) if prefix_tokens else ""
        self.key = _mix64(seed * 0x9E3779B97F4A7C15 + 1)

    def prompt(self, index: int, tokens: int) -> str:
        """The prompt of request ``index``: prefix, unique tag, text; ``tokens`` x 4 characters
        (at least the prefix and the tag plus one character)."""
        h = _mix64(index ^ self.key)
        tag = f"{h:016x}"
        head = (self.prefix + " " if self.prefix else "") + tag + " "
        rest = tokens * CHARS_PER_TOKEN - len(head)
        if rest <= 0:
            return head + "a"
        offset = (h >> 16) % self.size
        if rest <= self.size:
            return head + self.text[offset : offset + rest]
        repeats = -(-rest // self.size)
        return head + (self.text[offset : offset + self.size] * repeats)[:rest]


def prompt_text(seed: int, index: int, tokens: int, prefix_tokens: int = 0) -> str:
    """The generated prompt of request ``index`` of a run with ``seed`` (for tests and docs).

    Args:
        seed: the run's seed.
        index: 0-based request number.
        tokens: the prompt's length in estimated tokens (x :data:`CHARS_PER_TOKEN` characters).
        prefix_tokens: tokens of the shared prefix.

    Returns:
        The text (see the module docstring for its layout).
    """
    return _Corpus(seed, prefix_tokens).prompt(index, tokens)


class RequestFactory:
    """The parameters of each request of a run, in order.

    Args:
        request: the profile's ``request`` section.
        seed: the run's seed (prompts, lengths and dataset order derive from it).
        trace: with trace replay: the replayed trace; request *i* takes line *i*'s lengths.
        stripe: ``(i, n)``: this process is shard *i* of *n* (see ``LoadPlan.stripe``); its
            *j*-th request is global request ``i + j * n``, so that shards never repeat one
            another's prompts and a replayed trace keeps its lines.

    Attributes:
        issued: requests made so far (including skipped arrivals).
    """

    def __init__(
        self,
        request: RequestSpec,
        seed: int,
        trace: Trace | None = None,
        stripe: tuple[int, int] = (0, 1),
    ) -> None:
        self.request = request
        self.trace = trace
        self.issued = 0
        self._first, self._step = stripe
        shard = "" if stripe == (0, 1) else f":{stripe[0]}/{stripe[1]}"
        self._dataset = load_dataset(request.dataset).entries if request.dataset else None
        self._order_rng = random.Random(f"harborbench-dataset:{seed}{shard}")
        self._prompt_len = (
            make_count_sampler(
                request.prompt_tokens, random.Random(f"harborbench-len:{seed}{shard}")
            )
            if request.prompt_tokens is not None
            else None
        )
        self._max_tokens = make_count_sampler(
            request.max_tokens, random.Random(f"harborbench-max-tokens:{seed}{shard}")
        )
        self._corpus = _Corpus(seed, request.prefix_tokens or 0)
        self._fixed = (
            [{"role": m.role, "content": m.content} for m in request.messages]
            if request.messages is not None
            else None
        )
        base: dict[str, Any] = {"model": request.model, "stream": request.stream}
        extra = dict(request.extra_body)
        if request.stream:
            options = extra.pop("stream_options", None)
            merged = {"include_usage": True}
            if isinstance(options, dict):
                merged.update(options)
            base["stream_options"] = merged
        base.update(extra)
        self._base = base

    def skip(self, count: int = 1) -> None:
        """Count ``count`` arrivals that were not sent, so later requests keep their trace lines."""
        self.issued += count

    def next_params(self) -> dict[str, Any]:
        """The keyword arguments of the next ``acreate`` call.

        Returns:
            ``model``, ``messages``, ``max_tokens``, ``stream`` (and ``stream_options`` for a
            stream), and the profile's ``extra_body`` fields.
        """
        index = self._first + self.issued * self._step  # the global request number
        self.issued += 1
        max_tokens: int | None = None
        if self._fixed is not None:
            messages: list[dict[str, Any]] = self._fixed
        elif self._dataset is not None:
            n = len(self._dataset)
            if self.request.dataset_order == "sequential":
                entry = self._dataset[index % n]
            else:
                entry = self._dataset[self._order_rng.randrange(n)]
            messages = list(entry.messages)
            max_tokens = entry.output_tokens
        else:
            if self.trace is not None and index < len(self.trace):
                tokens = int(self.trace.input_tokens[index])
                max_tokens = int(self.trace.output_tokens[index])
                text = self._corpus.prompt(index, tokens)
            elif self._prompt_len is not None:
                text = self._corpus.prompt(index, self._prompt_len())
            else:
                text = f"{_mix64(index ^ self._corpus.key):016x} {DEFAULT_MESSAGES[0][1]}"
            messages = [{"role": "user", "content": text}]
        drawn = self._max_tokens()  # drawn every time, so the sequence does not depend on data
        params = dict(self._base)
        params["messages"] = messages
        params["max_tokens"] = max_tokens if max_tokens is not None else drawn
        return params
