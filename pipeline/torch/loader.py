"""``DepthLoader``: a ``DataLoader`` over a batching ``DepthShards`` whose ``state_dict()``
covers all its workers, for mid-epoch resume.

The dataset yields whole batches in the epoch's global order (``pipeline.torch.plan``)
and ``DataLoader`` takes them from its workers round robin, so the batches this rank has
yielded are exactly the first ones of its share: the state is (epoch, global batches
consumed), and a restarted job (on any number of ranks or workers) skips those.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from pipeline.errors import PipelineError
from pipeline.torch.datasets import DepthShards


class DepthLoader(DataLoader):
    """``DataLoader(data, batch_size=None, num_workers=...)`` with ``state_dict()`` /
    ``load_state_dict()``; other keyword arguments go to ``DataLoader`` (not
    ``persistent_workers``: workers copy the dataset's epoch and position when an epoch
    starts). By default workers are forks of this process when no other thread runs in it
    (they start at once, as torch's own default), else forks of a forkserver (a fork can
    inherit a lock another thread holds and hang; guard the script with ``if __name__ ==
    "__main__":`` then, as on macOS and Windows)."""

    def __init__(self, data: DepthShards, num_workers: int = 0, **kwargs: Any) -> None:
        if not isinstance(data, DepthShards) or data.batch_size is None:
            raise PipelineError(
                "DepthLoader reads a DepthShards built with batch_size= (it yields batches)"
            )
        if kwargs.get("persistent_workers"):
            raise PipelineError("DepthLoader: persistent_workers=True would keep a stale epoch")
        if num_workers > 0 and "multiprocessing_context" not in kwargs:
            kwargs["multiprocessing_context"] = _context()
        super().__init__(data, batch_size=None, num_workers=num_workers, **kwargs)
        self.data = data
        self._seen, self._complete = 0, False

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        if self._complete:  # iterated again without set_epoch: the epoch from its start
            self.data.consumed = 0
        self._seen, self._complete = 0, False
        for batch in super().__iter__():
            self._seen += 1
            yield batch
        self._complete = True

    def state_dict(self) -> dict[str, int]:
        """Where this epoch stands: global batches consumed (every rank in step); after
        a finished epoch, the start of the next one."""
        seed = self.data.shuffle_seed
        if self._complete:
            return {"epoch": self.data.epoch + 1, "consumed": 0, "seed": seed}
        done = self.data.consumed + self._seen * self.data.world_size
        return {"epoch": self.data.epoch, "consumed": done, "seed": seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue the epoch of ``state`` after the batches it had consumed."""
        if int(state.get("seed", self.data.shuffle_seed)) != self.data.shuffle_seed:
            raise PipelineError(
                f"DepthLoader.load_state_dict: the state is of shuffle_seed {state['seed']}, "
                f"this dataset's is {self.data.shuffle_seed}; build it with the same seed"
            )
        self.data.set_epoch(int(state["epoch"]))
        self.data.consumed = int(state["consumed"])
        self._seen, self._complete = 0, False


def _context() -> str:
    """``fork`` when no Python thread runs here but the main one and fsspec's IO thread
    (which fsspec resets in a forked child: ``fsspec.asyn.reset_after_fork``), as torch's
    own default; otherwise a forkserver, so that no lock another thread holds is inherited.
    (Native pools, OpenBLAS's, OpenMP's, OpenCV's, are idle here and reset or unused in a
    worker: workers run torch on one thread and never resize OpenCV's pool.)"""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    alone = all(t.name == "fsspecIO" for t in others)
    return "fork" if alone and "fork" in multiprocessing.get_all_start_methods() else _forkserver()


def _forkserver() -> str:
    """Workers forked from a forkserver that has imported ``pipeline.torch`` once (each
    worker then starts in milliseconds) rather than from this process, whose threads
    (fsspec's event loop, s3fs, a prefetch) may hold a lock at the fork and hang it."""
    from multiprocessing import forkserver

    preload = list(getattr(forkserver._forkserver, "_preload_modules", ["__main__"]))
    if "pipeline.torch" not in preload:  # no effect once this process's server runs
        multiprocessing.set_forkserver_preload([*preload, "pipeline.torch"])
    return "forkserver"
