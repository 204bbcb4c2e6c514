"""Background jobs and the server-wide queue that bounds how many train at once.

Plain Python (no streamlit). A :class:`Job` wraps ``work(job)``; it runs in a daemon thread that
only writes into its own :class:`Progress` record (under a lock), so a page can poll it from a
fragment and a Stop button can set ``job.stop`` at any time. Jobs that train go through a
:class:`JobQueue`: at most ``capacity`` run at once (default: the machine's core count, or
``$KAMOE_MAX_TRAININGS``); the others wait in line, see their place, and can be cancelled.
A finished job is collected exactly once (:meth:`Job.collect`), by whoever owns it.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kamoe.errors import USER_ERRORS

QUEUED, RUNNING, DONE, STOPPED, ERROR, CANCELLED = (
    "queued", "running", "done", "stopped", "error", "cancelled")
ACTIVE = (QUEUED, RUNNING)


def configure_torch_threads() -> int:
    """Use one torch thread (or $KAMOE_TORCH_THREADS) for the dashboard's small models.

    On a shared or busy 2-core machine torch's default intra-op pool spins against other
    processes: a 1-second KAN fit was measured at 40-80 s with the default and ~0.9 s with one
    thread. Returns the number of threads set.
    """
    import torch

    n = max(1, int(os.environ.get("KAMOE_TORCH_THREADS", "1") or 1))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@dataclass
class Progress:
    """What a job has reported so far (copied out under the job's lock)."""

    status: str = QUEUED  # queued, running, done, stopped, error, cancelled
    step: int = 0
    total: int = 0
    text: str = ""
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    message: str = ""
    position: int = 0  # place in the queue's line while queued (1 = next to start)
    queued: float = field(default_factory=time.perf_counter)
    started: float | None = None
    finished: float | None = None

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.step / self.total)

    @property
    def seconds(self) -> float:
        """Seconds spent running (0 while queued)."""
        if self.started is None:
            return 0.0
        end = self.finished if self.finished is not None else time.perf_counter()
        return end - self.started


class Job:
    """One background task: ``work(job)`` runs in a thread; ``job.report(...)`` records progress.

    ``work`` returns the job's result; a user error (any :data:`kamoe.errors.USER_ERRORS`) ends
    the job with status "error" and its message, any other exception with a short description
    (never a traceback in the UI; the traceback is kept in ``job.detail`` for logs).
    """

    def __init__(self, work: Callable[[Job], Any], kind: str = "train", label: str = "",
                 owner: Any = None) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.kind = kind
        self.label = label
        self.owner = owner  # what the job works on (a Run, a run id), for whoever collects it
        self.stop = threading.Event()
        self.result: Any = None
        self.detail = ""
        self._work = work
        self._lock = threading.Lock()
        self._progress = Progress()
        self._collected = False
        self._done = threading.Event()
        self._on_exit: Callable[[Job], None] | None = None
        self._thread = threading.Thread(target=self._main, name=f"kamoe-{kind}-{self.id}",
                                        daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Job:
        """Run now, outside any queue."""
        with self._lock:
            self._progress.status = RUNNING
            self._progress.started = time.perf_counter()
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            result = self._work(self)
        except USER_ERRORS as err:
            self._finish(ERROR, str(err))
        except Exception as err:  # noqa: BLE001 - the UI shows a message, not a traceback
            self.detail = traceback.format_exc()
            self._finish(ERROR, f"{type(err).__name__}: {err}")
        else:
            self.result = result
            self._finish(STOPPED if self.stop.is_set() else DONE, self.progress().message)
        finally:
            if self._on_exit is not None:
                self._on_exit(self)

    def _finish(self, status: str, message: str) -> None:
        with self._lock:
            self._progress.status = status
            self._progress.message = message
            self._progress.finished = time.perf_counter()
        self._done.set()

    def _cancel(self) -> None:
        self._finish(CANCELLED, "Cancelled before it started.")

    def report(self, step: int | None = None, total: int | None = None, text: str | None = None,
               epoch: int | None = None, train_loss: float | None = None,
               val_loss: float | None = None, message: str | None = None,
               new_curve: bool = False) -> None:
        """Record progress (called from the worker thread); ``new_curve`` starts the loss
        curve afresh (a new initialisation of a fit with several starts)."""
        with self._lock:
            p = self._progress
            if new_curve:
                p.epochs, p.train_loss, p.val_loss = [], [], []
            if step is not None:
                p.step = step
            if total is not None:
                p.total = total
            if text is not None:
                p.text = text
            if message is not None:
                p.message = message
            if epoch is not None:
                p.epochs.append(epoch)
                p.train_loss.append(float(train_loss if train_loss is not None else "nan"))
                p.val_loss.append(float(val_loss if val_loss is not None else "nan"))

    def progress(self) -> Progress:
        """A consistent copy of the progress record."""
        with self._lock:
            p = self._progress
            return replace(p, epochs=list(p.epochs), train_loss=list(p.train_loss),
                           val_loss=list(p.val_loss))

    def _set(self, **values: Any) -> None:
        with self._lock:
            for k, v in values.items():
                setattr(self._progress, k, v)

    # ------------------------------------------------------------------ queries
    @property
    def status(self) -> str:
        with self._lock:
            return self._progress.status

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in ACTIVE

    @property
    def running(self) -> bool:
        """Not finished yet (queued or running), as the pages poll it."""
        return self.active

    @property
    def queued(self) -> bool:
        return self.status == QUEUED

    def request_stop(self) -> None:
        """Stop a running job after its current step (a queued one: see JobQueue.cancel)."""
        self.stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the job has finished (or was cancelled); True when it has."""
        return self._done.wait(timeout)

    def collect(self) -> bool:
        """True exactly once, for the first caller after the job finished."""
        with self._lock:
            if self._progress.status in ACTIVE or self._collected:
                return False
            self._collected = True
            return True

    @property
    def collected(self) -> bool:
        with self._lock:
            return self._collected


def default_capacity() -> int:
    """$KAMOE_MAX_TRAININGS, else the number of cores this process may use."""
    env = os.environ.get("KAMOE_MAX_TRAININGS", "").strip()
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class JobQueue:
    """At most ``capacity`` jobs run at once; the rest wait in submission order."""

    def __init__(self, capacity: int | None = None) -> None:
        self._lock = threading.Lock()
        self._capacity = max(1, capacity or default_capacity())
        self._waiting: deque[Job] = deque()
        self._running: set[Job] = set()
        self.peak_running = 0  # the most jobs that ran at once (for the load test and logs)
        self.peak_waiting = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def set_capacity(self, capacity: int) -> None:
        """Change how many jobs may run at once (waiting jobs start if there is room now)."""
        with self._lock:
            self._capacity = max(1, int(capacity))
        self._dispatch()

    def reset_peaks(self) -> None:
        with self._lock:
            self.peak_running = len(self._running)
            self.peak_waiting = len(self._waiting)

    def submit(self, job: Job) -> Job:
        """Queue ``job``; it starts as soon as a place is free (maybe at once)."""
        job._on_exit = self._exited
        with self._lock:
            self._waiting.append(job)
            self.peak_waiting = max(self.peak_waiting, len(self._waiting))
        self._dispatch()
        return job

    def cancel(self, job: Job) -> bool:
        """Take a waiting job out of the line (True), or ask a running one to stop (False)."""
        with self._lock:
            if job in self._waiting:
                self._waiting.remove(job)
                job._cancel()
                self._renumber()
                return True
        job.request_stop()
        return False

    def counts(self) -> tuple[int, int]:
        """(running, waiting) right now."""
        with self._lock:
            return len(self._running), len(self._waiting)

    def _exited(self, job: Job) -> None:
        with self._lock:
            self._running.discard(job)
        self._dispatch()

    def _dispatch(self) -> None:
        with self._lock:
            started = []
            while self._waiting and len(self._running) < self._capacity:
                job = self._waiting.popleft()
                self._running.add(job)
                started.append(job)
            self.peak_running = max(self.peak_running, len(self._running))
            self._renumber()
        for job in started:
            job._set(status=RUNNING, started=time.perf_counter(), position=0)
            job._thread.start()

    def _renumber(self) -> None:
        for k, job in enumerate(self._waiting, start=1):
            job._set(position=k)


_QUEUE: JobQueue | None = None
_QUEUE_LOCK = threading.Lock()


def training_queue() -> JobQueue:
    """The one queue of this server process (every browser session and the CLI share it)."""
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            _QUEUE = JobQueue()
        return _QUEUE


def function_job(fn: Callable[..., Any], kind: str, label: str = "", owner: Any = None,
                 **kwargs: Any) -> Job:
    """A job running ``fn(progress=cb, **kwargs)`` (cb(fraction_or_step, text)); not started."""

    def work(job: Job) -> Any:
        configure_torch_threads()

        def cb(*args: Any, **kw: Any) -> None:
            frac = next((a for a in args if isinstance(a, (int, float))), None)
            text = next((a for a in args if isinstance(a, str)), kw.get("text", ""))
            if frac is not None and 0 <= frac <= 1:
                job.report(step=int(round(frac * 100)), total=100, text=text)
            else:
                job.report(text=text)
        return fn(progress=cb, **kwargs)

    return Job(work, kind=kind, label=label, owner=owner)
