"""Micro-batching: requests that arrive together become one model call.

An asyncio queue and one worker task take what is queued (up to `max_batch_texts` texts),
waiting at most `max_wait_ms` after the oldest request for more while callers are arriving
together, run the model in a single dedicated thread (so model calls never run concurrently and
the CPU is not oversubscribed), and route each caller's slice of the results back to it. A caller
that stops waiting (its task cancelled, e.g. its client disconnected) takes its job out of the
queue: the model never sees it, and it no longer counts against `max_queue`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from arner.serve.settings import ServeSettings

log = logging.getLogger("arner.serve")


class ServiceUnavailable(RuntimeError):
    """The batcher is stopping or its queue is full."""


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future  # cancelled when its caller stops waiting: the worker then drops the job unseen
    enqueued: float
    batch_texts: int = field(default=0)
    taken: bool = False  # off the queue, in the hands of the worker


class MicroBatcher:
    """Merges concurrent `submit` calls into few `predict(texts)` calls run on one worker thread.

    The worker takes the oldest job, then every queued job up to `max_batch_texts` texts; when
    the previous batch merged several jobs (callers are arriving together) it also waits for more
    until `max_wait_ms` after the oldest job arrived, so a lone caller never waits and a job that
    already waited while the model was busy does not wait again. A job is never split; a job
    larger than `max_batch_texts` runs alone. A failing `predict` fails only the jobs of its batch.
    """

    def __init__(self, predict: Callable[[list[str]], list], settings: ServeSettings | None = None):
        """Of `settings` (default: the defaults), `max_batch_texts`, `max_wait_ms` and `max_queue` apply;
        they were validated when the settings were built, so they are not checked again here."""
        settings = settings or ServeSettings()
        self.predict = predict
        self.max_batch_texts = settings.max_batch_texts
        self.max_wait = settings.max_wait_ms / 1000
        self.max_queue = settings.max_queue
        self.calls = 0  # predict calls made
        self.texts_done = 0
        self.requests_done = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._queued = 0  # jobs in the queue whose callers still wait (the queue also holds abandoned ones)
        self._held: _Job | None = None  # taken from the queue but left for the next batch
        self._batch: list[_Job] = []  # the batch being gathered or run
        self._last_jobs = 0  # requests in the last batch
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._closing

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._queued = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arner-model")
        self._closing = False
        self._task = asyncio.create_task(self._worker(), name="arner-batcher")

    async def run_in_worker(self, fn, *args):
        """Run `fn(*args)` on the model thread (used for warm-up)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, texts: list[str]) -> tuple[list, int]:
        """Results of `predict(texts)` and the number of texts in the merged call that produced them."""
        if not texts:
            return [], 0
        if not self.running or self._queue is None:
            raise ServiceUnavailable("the service is shutting down")
        if self._queued >= self.max_queue:
            raise ServiceUnavailable(f"too many queued requests (max_queue={self.max_queue}); retry later")
        loop = asyncio.get_running_loop()
        job = _Job(texts, loop.create_future(), loop.time())
        self._queue.put_nowait(job)
        self._queued += 1
        try:
            result = await job.future
        except asyncio.CancelledError:
            # the caller left: mark the job (cancelling our task cancelled the future it awaited,
            # but say so) so that the worker skips it, and free its place in the queue now
            job.future.cancel()
            if not job.taken:
                self._queued -= 1
            raise
        return result, job.batch_texts

    async def _next_job(self, timeout: float | None) -> _Job | None:
        """The next job whose caller still waits, or None after `timeout` s (None: wait for one)."""
        if self._held is not None:
            job, self._held = self._held, None
            if not job.future.done():
                return job
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            job = await self._take(None if deadline is None else deadline - loop.time())
            if job is None or not job.future.done():  # a done future here was cancelled by its caller
                return job

    async def _take(self, timeout: float | None) -> _Job | None:
        assert self._queue is not None
        if timeout is None:
            job = await self._queue.get()
        elif not self._queue.empty():
            job = self._queue.get_nowait()
        elif timeout <= 0:
            return None
        else:
            try:
                job = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                return None
        if not job.future.done():  # an abandoned job was uncounted when its caller left
            job.taken = True
            self._queued -= 1
        return job

    async def _gather(self) -> list[_Job]:
        """The next batch; kept in `self._batch` so that `stop` can fail it if cancelled midway."""
        loop = asyncio.get_running_loop()
        first = await self._next_job(None)
        self._batch = [first]
        n = len(first.texts)
        # wait for company only when the last batch had some: a lone caller is not kept waiting
        deadline = first.enqueued + (self.max_wait if self._last_jobs > 1 else 0.0)
        while n < self.max_batch_texts:
            job = await self._next_job(deadline - loop.time())
            if job is None:
                break
            if n + len(job.texts) > self.max_batch_texts:
                self._held = job
                break
            self._batch.append(job)
            n += len(job.texts)
        return [j for j in self._batch if not j.future.done()]  # a caller that went away is skipped

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            if not jobs:
                continue
            texts = [t for j in jobs for t in j.texts]
            try:
                results = await loop.run_in_executor(self._executor, self.predict, texts)
                if len(results) != len(texts):
                    raise RuntimeError(f"predict returned {len(results)} results for {len(texts)} texts")
                i = 0
                for j in jobs:
                    j.batch_texts = len(texts)
                    if not j.future.done():
                        j.future.set_result(results[i : i + len(j.texts)])
                    i += len(j.texts)
            except Exception as e:  # noqa: BLE001 - routed to the callers of this batch; the worker goes on
                log.exception("predict failed on a batch of %d texts", len(texts))
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            finally:
                self._batch = []
                self._last_jobs = len(jobs)
            self.calls += 1
            self.texts_done += len(texts)
            self.requests_done += len(jobs)

    async def stop(self) -> None:
        """Stop the worker, fail whatever is still queued or gathered (503), and wait for the model thread."""
        self._closing = True
        pending = []
        if self._task is not None:
            self._task.cancel()
            pending = list(self._batch)  # what the worker held when it was cancelled
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._held is not None:
            pending.append(self._held)
        self._held = None
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        self._queued = 0
        for j in pending:
            if not j.future.done():
                j.future.set_exception(ServiceUnavailable("the service is shutting down"))
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
            self._executor = None

    def stats(self) -> dict:
        return {
            "max_batch_texts": self.max_batch_texts,
            "max_wait_ms": self.max_wait * 1000,
            "max_queue": self.max_queue,
            "predict_calls": self.calls,
            "requests": self.requests_done,
            "texts": self.texts_done,
            "queued": self._queued,
        }
