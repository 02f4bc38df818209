"""dlib's ResNet face descriptor in worker processes, so that several threads encode at once.

dlib (20.0.1) holds the GIL while `compute_face_descriptor` runs: two camera
threads encoding in one process take turns on one core (measured: 0.94-1.04x one
thread), and the descriptor is most of a frame's work.  An `EncoderPool` runs
the network in worker processes instead; a thread waiting for its encodings
holds no GIL, so each camera's thread gets a core.  The pool is handed face
chips, the 150 x 150 crops dlib itself cuts before its network runs
(`encode.FaceEncoder` makes them), so its encodings equal in-process ones.

With jitters above 1, dlib draws the jitters from the model's own random
generator, so such an encoding depends on what that model encoded before, in
a worker or not (as it always has).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from ..common.dlib_models import model_path

log = logging.getLogger(__name__)

ENCODING_SIZE = 128
# dlib's ResNet takes a 150 x 150 chip cut with this padding around the landmarks
# (compute_face_descriptor's own defaults; part of encode.ENCODER_SIGNATURE).
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# s: a worker imports dlib and loads the model in a second or so here, a few on a
# Raspberry Pi; one that has not after this long is stuck.
STARTUP_TIMEOUT = 120.0

# In a worker process: its model, and the barrier its pool's start waits at.
_worker_model: Any = None
_worker_barrier: Any = None


class EncoderPoolError(RuntimeError):
    """The worker processes did not start."""


class EncoderPool:
    """Worker processes running dlib's ResNet on face chips, shared by any number of threads.

    The workers are started and warmed up here (each loads the model and encodes
    once), so the first real encoding is not slow; `close()` ends them.  A worker
    that dies (the OOM killer, a crash) breaks the pool: a new one is started and
    the encoding retried, and if that fails too the encodings are made in this
    process from then on (one core for all threads), logged each time.
    """

    def __init__(self, processes: int) -> None:
        """Starts `processes` workers and waits until each is ready; EncoderPoolError if they do not start."""
        if processes < 1:
            raise ValueError(f"an encoder pool needs at least 1 process, not {processes}")
        self.processes = processes
        self._lock = threading.Lock()  # guards the executor, its pids and closing
        self._closed = False
        self._executor: ProcessPoolExecutor | None  # None once encoding in this process for good
        self._executor, self._pids = _start(processes)
        self._model_lock = threading.Lock()  # dlib's network is not thread-safe
        self._model: Any = None  # the in-process model, loaded only when the workers are given up

    @property
    def pids(self) -> tuple[int, ...]:
        """The workers' process ids (none once encoding in this process), to measure their memory."""
        return self._pids

    def descriptors(self, chips: np.ndarray, jitters: int = 1) -> np.ndarray:
        """The encodings of face chips ((n, 150, 150, 3) uint8 RGB) as an (n, 128) float32 array.

        Blocks the calling thread only: it holds no GIL while a worker encodes.
        All of a call's chips go to one worker in one batch, as dlib encodes the
        faces of one image in process.
        """
        _check_chips(chips)
        for retried in (False, True):
            executor = self._current()
            if executor is None:
                break
            try:
                return executor.submit(_encode_in_worker, chips, jitters).result()
            except BrokenProcessPool:
                self._after_break(executor, retried)
        return self._encode_here(chips, jitters)

    def close(self) -> None:
        """Ends the workers once the encodings under way are done; encoding afterwards is a RuntimeError."""
        with self._lock:
            executor, self._executor, self._pids = self._executor, None, ()
            self._closed = True
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EncoderPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _current(self) -> ProcessPoolExecutor | None:
        """The pool to submit to (waiting while another thread replaces a broken one), None if given up."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the encoder pool is closed")
            return self._executor

    def _after_break(self, executor: ProcessPoolExecutor, retried: bool) -> None:
        """Replaces the broken `executor` once, however many threads saw it break; gives up on workers
        when the retry on a new pool broke too or no new pool starts."""
        with self._lock:
            if self._executor is not executor:
                return  # another thread has seen to it (or the pool was closed)
            executor.shutdown(wait=False, cancel_futures=True)
            self._executor, self._pids = None, ()
            if retried:
                log.error(
                    "the restarted encoder pool broke too; encoding in this process from now on "
                    "(one core for all cameras)"
                )
                return
            log.error("an encoder worker process died (killed for memory, or crashed); starting a new pool")
            try:
                self._executor, self._pids = _start(self.processes)
            except EncoderPoolError as exc:
                log.error("%s; encoding in this process from now on (one core for all cameras)", exc)

    def _encode_here(self, chips: np.ndarray, jitters: int) -> np.ndarray:
        """The encodings made in this process, with a model loaded on first need."""
        with self._model_lock:
            if self._model is None:
                self._model = load_resnet()
            return _descriptors(self._model, chips, jitters)


def load_resnet() -> Any:
    """dlib's face descriptor network, from face_recognition_models."""
    import dlib

    return dlib.face_recognition_model_v1(model_path("encoder"))


def as_encodings(descriptors: Any) -> np.ndarray:
    """dlib's descriptors (a sequence of 128-d vectors) as an (n, 128) float32 array."""
    return np.asarray([np.asarray(d) for d in descriptors], dtype=np.float32).reshape(-1, ENCODING_SIZE)


def _descriptors(model: Any, chips: np.ndarray, jitters: int) -> np.ndarray:
    """The encodings of chips by `model`, in one batch."""
    return as_encodings(model.compute_face_descriptor(list(chips), jitters))


def _check_chips(chips: np.ndarray) -> None:
    """ValueError unless `chips` are face chips as dlib's network takes them."""
    expected = (CHIP_SIZE, CHIP_SIZE, 3)
    if (
        not isinstance(chips, np.ndarray)
        or chips.ndim != 4
        or chips.shape[1:] != expected
        or chips.dtype != np.uint8
    ):
        got = f"{chips.shape} {chips.dtype}" if isinstance(chips, np.ndarray) else type(chips).__name__
        raise ValueError(f"face chips must be an (n, {CHIP_SIZE}, {CHIP_SIZE}, 3) uint8 array, not {got}")


def _start(processes: int) -> tuple[ProcessPoolExecutor, tuple[int, ...]]:
    """A pool of `processes` spawned workers, each ready (model loaded and run once), and their pids.

    "spawn", not fork: a forked child would inherit the daemon's threads' locks
    (logging, OpenCV) in whatever state they were.  The executor spawns a worker
    per task while none is idle, and each start task waits at a barrier until
    all have arrived, so every worker runs exactly one.
    """
    context = multiprocessing.get_context("spawn")
    try:
        barrier = context.Barrier(processes)
        executor = ProcessPoolExecutor(processes, context, initializer=_start_worker, initargs=(barrier,))
    except OSError as exc:
        raise EncoderPoolError(f"the encoder worker processes did not start: {exc}") from exc
    try:
        starts = [executor.submit(_ready) for _ in range(processes)]
        return executor, tuple(start.result(timeout=STARTUP_TIMEOUT) for start in starts)
    except (BrokenProcessPool, threading.BrokenBarrierError, TimeoutError, OSError) as exc:
        executor.shutdown(wait=False, cancel_futures=True)
        why = str(exc).rstrip(".") or type(exc).__name__
        raise EncoderPoolError(
            f"the encoder worker processes did not start ({why}; a worker's own error, if any, is on stderr)"
        ) from exc


def _start_worker(barrier: Any) -> None:
    """In each new worker: Ctrl-C left to the parent, which closes the pool (SIGTERM is not ignored: the
    executor ends a broken pool's workers with it); the model loaded and run once (its first run
    allocates the network's buffers)."""
    global _worker_model, _worker_barrier
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_model = load_resnet()
    _descriptors(_worker_model, np.zeros((1, CHIP_SIZE, CHIP_SIZE, 3), dtype=np.uint8), 1)
    _worker_barrier = barrier


def _ready() -> int:
    """A start task: waits until all of the pool's workers are ready, then names this one."""
    _worker_barrier.wait(STARTUP_TIMEOUT)
    return os.getpid()


def _encode_in_worker(chips: np.ndarray, jitters: int) -> np.ndarray:
    """The encodings of chips by this worker's model."""
    return _descriptors(_worker_model, chips, jitters)
