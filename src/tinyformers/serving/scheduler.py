"""Continuous batching: one model thread decodes every running request together, one token each per step.

Between two steps, requests join (their prompts are prefilled into free ``SlotCache`` rows, short prompts of
similar lengths in one forward: ``prefill_groups``; the first positions of a prompt that starts like a recent one
are copied from the ``PromptCache`` instead of run, and a prompt held there but for its last token joins the next
step without a prefill) and leave (finished or cancelled; the row is reused). Each
request carries what ``generate`` would have prepared for it (``params.prepare_request``: its logits processors
and stop conditions) and its own random generator, and its token is picked with the same function ``generate``
uses, so a greedy request gives ``generate``'s ids whatever else is in the batch. Waiting requests sit in a
bounded queue: when it is full, ``submit`` refuses at once (``QueueFull``) and the server answers 429.

Requests often come in bursts (several users at once, or one client's parallel calls). An idle scheduler that
started the first of a burst alone would make the rest wait a whole step before joining; so, from idle, it waits
while the server is still reading requests it has announced (``announce``), or while arrivals keep coming
``gather_gap`` apart, for ``gather_gap`` x 5 at most (``_gather_arrivals``). Requests that finished together
and left it idle are expected back together: clients that send their next request as soon as they have an answer
(a batch job, an agent, a load test) return a few ms apart, but not always ``gather_gap`` apart, so right after
such a batch the scheduler waits for as many arrivals as it had finished (within the same 5 gaps), then for the
gap as usual. Otherwise a batch that started one request short would stay so: the late one ends a step after the
others, and comes back a step later again.

Results go to each request's ``sink`` (called from the model thread): ``Token`` per generated token, then one
``Finished``.

An encoder-decoder model (T5) runs through the same loop: its cache rows (``seq2seq.EncoderDecoderSlots``) encode
each request's prompt when it joins, and its decoder starts from the start token, as in ``generate``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..generation.logits_process import apply_processors
from ..generation.prepare import Prepared
from ..generation.sampling import pick_tokens
from .defaults import GATHER_GAP, MAX_BATCH, MAX_QUEUE
from .metrics import Metrics
from .params import SamplingParams, prepare_request
from .prompt_cache import PromptCache
from .seq2seq import EncoderDecoderSlots
from .slots import SlotCache
from .text import IncrementalText

log = logging.getLogger(__name__)

# Prompts of up to this many tokens are prefilled together, with padding under this share of the tokens run.
PREFILL_BATCH_TOKENS = 128
PREFILL_PADDING = 0.25


class QueueFull(Exception):
    """The waiting queue is at its bound; retry later."""


@dataclass
class Token:
    token_id: int
    text: str  # the text that became final with this token (may be "")
    logprob: float | None = None
    top_logprobs: list[tuple[int, float]] | None = None


@dataclass
class Finished:
    reason: str  # "stop", "length", "cancelled" or "error"
    prompt_tokens: int
    completion_tokens: int
    text: str = ""  # the last piece of text, released at the end
    error: str | None = None


class Request:
    _ids = itertools.count()

    def __init__(self, prompt_ids: list[int], params: SamplingParams, p: Prepared, tokenizer, sink: Callable):
        """``prompt_ids`` is the prompt as the client sent it; ``p.input_ids`` what the decoder starts from (the
        same ids for a causal model, the start token for an encoder-decoder one)."""
        self.id = next(self._ids)
        self.prompt_ids, self.params, self.p, self.sink = prompt_ids, params, p, sink
        self.cancelled = False
        self.generator = None
        if not params.greedy:
            seed = params.seed if params.seed is not None else torch.randint(2**62, ()).item()
            self.generator = torch.Generator(device=p.input_ids.device).manual_seed(seed)
        self.ids = torch.zeros((1, p.max_length), dtype=torch.long, device=p.input_ids.device)
        self.start = p.input_ids.shape[1]  # decoder positions before the first generated token
        self.ids[0, : self.start] = p.input_ids[0]
        self.length = self.start
        self.text = IncrementalText(tokenizer, params.stop)
        self.row: int | None = None
        # First prompt positions whose keys and values ``prefix`` holds (from the prompt cache), and so need not run.
        self.reused, self.prefix = 0, None
        self.arrived = time.perf_counter()
        self.last_token_at: float | None = None

    @property
    def completion_tokens(self) -> int:
        return self.length - self.start

    @property
    def plain_greedy(self) -> bool:
        """Argmax of the raw logits: the token can be picked for many rows at once."""
        return self.params.greedy and not self.p.processors and not self.params.logprobs


def to_run(request: Request) -> int:
    """The prompt tokens a request's prefill runs: those not reused from the prompt cache."""
    return len(request.prompt_ids) - request.reused


def prefill_groups(requests: list[Request]) -> list[list[Request]]:
    """Split the requests that join at one step into groups prefilled in one forward each.

    A short prompt's forward costs about what reading every weight once costs, so batching short prompts saves
    most of the time; at a few hundred tokens the matrices are as busy with one prompt as with eight and
    batching saves nothing (benchmarks/README.md). Prompts are grouped by length (shortest first) so that
    padding stays under ``PREFILL_PADDING`` of the tokens computed, and only prompts of up to
    ``PREFILL_BATCH_TOKENS`` tokens are batched; longer ones run alone. A prompt counts for the tokens it runs
    (``to_run``).
    """
    groups: list[list[Request]] = []
    for request in sorted(requests, key=to_run):
        length = to_run(request)
        group = groups[-1] if groups else None
        if group is not None and length <= PREFILL_BATCH_TOKENS:
            real = sum(to_run(r) for r in group) + length
            if (len(group) + 1) * length * (1 - PREFILL_PADDING) <= real:  # sorted: ``length`` is the longest
                group.append(request)
                continue
        groups.append([request])
    return groups


class Scheduler:
    def __init__(
        self,
        model,
        tokenizer,
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
        max_length: int | None = None,
        prompt_cache_bytes: int = 0,
        gather_gap: float = GATHER_GAP,
    ):
        if max_batch < 1 or max_queue < 0 or (max_length is not None and max_length < 2):
            raise ValueError(
                f"max_batch={max_batch}, max_queue={max_queue}, max_length={max_length}: the batch needs at least "
                "1 row, the queue 0 or more places and a cache row 2 or more positions"
            )
        limit = getattr(model.config, "max_position_embeddings", None)
        slots = EncoderDecoderSlots if getattr(model.config, "is_encoder_decoder", False) else SlotCache
        self.model, self.tokenizer = model, tokenizer
        # cache positions per row (and, for an encoder-decoder model, prompt tokens)
        self.max_length = min((x for x in (max_length, limit) if x), default=slots.default_length)
        self.slots = slots(model, max_batch, self.max_length)
        # An encoder-decoder model's decoder prompt is its start token: nothing there to reuse.
        self.prompt_cache = (
            PromptCache(prompt_cache_bytes) if prompt_cache_bytes and slots is SlotCache else None
        )
        self.max_queue = max_queue
        self.gather_gap = gather_gap
        self.announced = 0  # requests the server is reading, not yet submitted (``announce``)
        # requests that finished together and left the scheduler idle, and when (``_gather_arrivals``)
        self.ended, self.ended_at = 0, 0.0
        self.metrics = Metrics()
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []  # running[i] owns cache row i
        self.next_token = torch.zeros(
            max_batch, dtype=torch.long
        )  # each row's token to feed at the next step
        self.next_position = torch.zeros(max_batch, dtype=torch.long)
        self.wake = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="tinyformers-scheduler", daemon=True)

    # ---- called from the server's threads ----------------------------------------------------------------------
    def start(self) -> Scheduler:
        self.thread.start()
        return self

    def submit(self, prompt_ids: list[int], params: SamplingParams, sink: Callable) -> Request:
        """Queue a request; raises ``ValueError`` (prompt or budget too long) or ``QueueFull``."""
        if not prompt_ids:  # an empty prompt starts from bos, as generate() does (it refuses without one)
            prompt_ids = prepare_request(self.model, self.tokenizer, prompt_ids, params).input_ids[0].tolist()
        self.slots.check_fits(prompt_ids, params.max_new_tokens)
        p = prepare_request(self.model, self.tokenizer, self.slots.decoder_prompt(prompt_ids), params)
        request = Request(prompt_ids, params, p, self.tokenizer, sink)
        with self.wake:
            if self.stopping:
                raise QueueFull("the server is shutting down")
            if len(self.waiting) >= self.max_queue:
                with self.metrics.lock:
                    self.metrics.rejected += 1
                raise QueueFull(f"{len(self.waiting)} requests are waiting (--max-queue {self.max_queue})")
            self.waiting.append(request)
            self._count()
            self.wake.notify()
        return request

    @contextlib.contextmanager
    def announce(self):
        """Around the server's reading of a request, until its ``submit`` (or its error): an idle scheduler waits
        for announced requests before it starts (``_gather_arrivals``)."""
        with self.wake:
            self.announced += 1
        try:
            yield
        finally:
            with self.wake:
                self.announced -= 1
                self.wake.notify()

    def room(self, prompt_ids: list[int]) -> int:
        """The most tokens a request with this prompt may ask for."""
        return self.slots.room(prompt_ids)

    def cancel(self, request: Request) -> None:
        """Stop ``request``; its cache row is freed at the next step."""
        request.cancelled = True
        with self.wake:
            self.wake.notify()

    def stop(self, drain: bool = True, timeout: float | None = None) -> None:
        """Refuse new requests; finish (``drain``) or cancel what is queued and running; end the thread."""
        with self.wake:
            self.stopping = True
            if not drain:
                for request in [*self.waiting, *self.running]:
                    request.cancelled = True
            self.wake.notify()
        if self.thread.is_alive():
            self.thread.join(timeout)

    # ---- the model thread ---------------------------------------------------------------------------------------
    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                with self.wake:
                    while not (self.waiting or self.running or self.stopping):
                        self.wake.wait()
                    if self.stopping and not (self.waiting or self.running):
                        return
                    if not self.running:
                        self._gather_arrivals()
                    free = self.slots.rows - len(self.running)
                    joining = [self.waiting.popleft() for _ in range(min(free, len(self.waiting)))]
                    self._count()
                joining = [r for r in joining if not self._refuse_cancelled(r)]
                for request in joining:
                    self._find_prefix(request)
                cached = [r for r in joining if r.reused and to_run(r) == 1]
                if cached:
                    self._join_cached(cached)
                for group in prefill_groups([r for r in joining if r not in cached]):
                    self._prefill(group)
                self._finish_all([(r, "cancelled") for r in self.running if r.cancelled])
                if self.running:
                    try:
                        self._step()
                    except Exception as error:  # noqa: BLE001 - every running request is told, then the loop goes on
                        log.exception("decoding step failed")
                        for request in list(self.running):
                            self._finish(request, "error", str(error))

    def _gather_arrivals(self) -> None:
        """From idle (called holding ``wake``): wait while announced requests are still being read, or until no
        request has arrived for ``gather_gap``, until the batch is full or ``gather_gap`` x 5 has passed, so that
        a burst starts in one step. Right after a batch ended together, wait at least until as many requests as it
        had are in (or the 5 gaps have passed)."""
        now = time.monotonic()
        deadline, quiet_at = now + 5 * self.gather_gap, now + self.gather_gap
        expected = min(self.ended, self.slots.rows) if now - self.ended_at < 5 * self.gather_gap else 0
        self.ended = 0
        seen = len(self.waiting)
        while 0 < seen < self.slots.rows and not self.stopping:
            until = deadline if self.announced or seen < expected else min(quiet_at, deadline)
            left = until - time.monotonic()
            if left <= 0:
                return
            self.wake.wait(left)
            if len(self.waiting) != seen:
                seen, quiet_at = len(self.waiting), time.monotonic() + self.gather_gap

    def _refuse_cancelled(self, request: Request) -> bool:
        if request.cancelled:
            self._report(request, Finished("cancelled", len(request.prompt_ids), 0))
        return request.cancelled

    def _find_prefix(self, request: Request) -> None:
        """Look ``request``'s prompt up in the prompt cache: all of it may be reused but its last token, which
        gives the logits of the first new one (``_join_cached``)."""
        if self.prompt_cache is not None:
            request.reused, request.prefix = self.prompt_cache.match(request.prompt_ids, request.start - 1)

    def _join_cached(self, requests: list[Request]) -> None:
        """Requests whose prompts the cache holds but for their last token join the running batch without a
        forward of their own: their rows take the cached keys and values, and their last prompt tokens run in the
        next decoding step beside the others' tokens, whose logits give their first new tokens. A prompt asked
        again (a retry, a regenerated answer, the same question) so waits one step at most, not a prefill."""
        first = self.slots.take([r.reused for r in requests])
        for row, request in enumerate(requests, first):
            request.row = row
            self.running.append(request)
        self.slots.place_prefixes([(r.row, r.prefix, r.reused) for r in requests])
        rows = slice(first, first + len(requests))
        self.next_token[rows] = torch.stack([r.p.input_ids[0, -1] for r in requests])
        self.next_position[rows] = torch.stack([r.p.position_ids[0, -1] for r in requests])
        for request in requests:
            request.prefix = None
        with self.metrics.lock:
            self.metrics.prompt_tokens += sum(len(r.prompt_ids) for r in requests)
            self.metrics.prompt_tokens_reused += sum(r.reused for r in requests)

    def _prefill(self, group: list[Request]) -> None:
        """Run the prompts of ``group`` in one forward (left-padded) into fresh cache rows.

        Each row runs the same number of last positions, as many as the request that reuses least needs; a row
        with a longer cached prefix copies only what lies before those positions."""
        # What the decoder runs: the prompts (an encoder-decoder model: its start token).
        lengths = [r.start for r in group]
        run = max(r.start - r.reused for r in group)
        # positions each row takes from its cached prefix
        copied = [max(0, length - run) for length in lengths]
        device = group[0].p.input_ids.device
        input_ids = torch.zeros((len(group), run), dtype=torch.long, device=device)
        position_ids = torch.zeros_like(input_ids)
        for i, request in enumerate(group):
            width = lengths[i] - copied[i]
            input_ids[i, run - width :] = request.p.input_ids[0, copied[i] :]
            position_ids[i, run - width :] = request.p.position_ids[0, copied[i] :]
        try:
            view = self.slots.prefill_view(lengths, [r.prompt_ids for r in group], new_tokens=run)
            for request in group:
                request.row = len(self.running)
                self.running.append(request)
            self.slots.place_prefixes([(r.row, r.prefix, n) for r, n in zip(group, copied) if n])
            for request in group:
                request.prefix = None
            logits = self.model.next_token_logits(input_ids, position_ids, view)
        except Exception as error:  # noqa: BLE001 - these requests fail, the others go on
            log.exception("prefill failed")
            for request in group:
                if request.row is not None:
                    self._finish(request, "error", str(error))
                else:
                    self._report(request, Finished("error", len(request.prompt_ids), 0, error=str(error)))
            return
        if self.prompt_cache is not None:
            for request in group:
                if request.prompt_ids not in self.prompt_cache:
                    self.prompt_cache.store(
                        request.prompt_ids, self.slots.prompt_kv(request.row, request.start)
                    )
        with self.metrics.lock:
            self.metrics.prompt_tokens += sum(len(r.prompt_ids) for r in group)
            self.metrics.prompt_tokens_reused += sum(copied)
        for request in group:
            self.next_position[request.row] = request.start
        done = [(r, self._advance(r, logits[i : i + 1])) for i, r in enumerate(group)]
        self._finish_all(done)

    def _step(self) -> None:
        n = len(self.running)
        view = self.slots.step_view()
        logits = self.model.next_token_logits(self.next_token[:n, None], self.next_position[:n, None], view)
        self.slots.advance()
        self.next_position[:n] += 1
        greedy = [r for r in self.running if r.plain_greedy]
        if greedy:
            picks = logits[[r.row for r in greedy]].argmax(-1).tolist()
            chosen = {r.id: t for r, t in zip(greedy, picks)}
        else:
            chosen = {}
        done = [
            (r, self._advance(r, logits[row : row + 1], chosen.get(r.id)))
            for row, r in enumerate(self.running)
        ]
        self._finish_all(done)

    def _advance(self, request: Request, logits: torch.Tensor, token: int | None = None) -> str | None:
        """Pick ``request``'s next token from its ``[1, vocab]`` logits, record it, and check its stops; returns
        why it is done ("stop" or "length"), or None. Rows are freed afterwards (``_finish_all``)."""
        p, params = request.p, request.params
        logprob = top = None
        if token is None:
            scores = logits.float()
            if params.logprobs:
                logprobs = scores.log_softmax(-1)[0]
            scores = apply_processors(p.processors, request.ids[:, : request.length], scores)
            token = int(pick_tokens(scores, p.gc.do_sample, request.generator))
            if params.logprobs:
                logprob = float(logprobs[token])
                if params.top_logprobs:
                    values, ids = logprobs.topk(params.top_logprobs)
                    top = list(zip(ids.tolist(), values.tolist()))
        request.ids[0, request.length] = token
        request.length += 1
        self.next_token[request.row] = token
        now = time.perf_counter()
        with self.metrics.lock:
            self.metrics.generated_tokens += 1
            if request.last_token_at is None:
                self.metrics.ttft.observe(now - request.arrived)
            else:
                self.metrics.token_latency.observe(now - request.last_token_at)
        request.last_token_at = now
        stopped = False
        if p.stops is not None:
            stopped = bool(
                p.stops.done(
                    request.ids[:, : request.length], request.ids[0, request.length - 1 : request.length]
                )
            )
        text = request.text.add(token)
        self._report(request, Token(token, text, logprob, top))
        if stopped or request.text.stopped:
            return "stop"
        return "length" if request.length == p.max_length else None

    def _finish_all(self, done: list[tuple[Request, str | None]]) -> None:
        """Finish the requests given a reason, last row first: a freed row is refilled with the last running one
        (``SlotCache.release``), so when a whole batch ends together no row is copied."""
        ended = 0
        for request, reason in sorted(done, key=lambda pair: -pair[0].row):
            if reason is not None:
                self._finish(request, reason)
                ended += reason in ("stop", "length")
        if ended and not self.running:
            self.ended, self.ended_at = ended, time.monotonic()

    def _finish(self, request: Request, reason: str, error: str | None = None) -> None:
        rest = request.text.finish() if reason in ("stop", "length") else ""
        moved = self.slots.release(request.row)
        last = self.running.pop()
        if moved is not None:  # the last row took the freed one's place
            self.running[request.row] = last
            last.row = request.row
            self.next_token[last.row] = self.next_token[moved]
            self.next_position[last.row] = self.next_position[moved]
        request.row = None
        self._report(
            request, Finished(reason, len(request.prompt_ids), request.completion_tokens, rest, error)
        )
        with self.wake:
            self._count()

    def _report(self, request: Request, event) -> None:
        if isinstance(event, Finished):
            with self.metrics.lock:
                self.metrics.finished[event.reason] = self.metrics.finished.get(event.reason, 0) + 1
        try:
            request.sink(event)
        except Exception:  # noqa: BLE001 - a client that went away must not stop the others
            log.exception("delivering a result failed")

    def _count(self) -> None:
        with self.metrics.lock:
            self.metrics.queued = len(self.waiting)
            self.metrics.running = len(self.running)
