"""Run-time plumbing shared by every long-running entry point: the progress callback type and
the torch thread setting for small networks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

#: The one progress callback type: ``progress(info)`` with a mapping of figures. Trainers send
#: env_steps, total_timesteps, episode_return, steps_per_s, eval_return; collection adds a
#: ``stage`` key ("train" / "collect"); the rollout engine sends episodes, steps, steps_per_s.
ProgressFn = Callable[[Mapping[str, Any]], None]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily ``torch.set_num_threads(n)`` (small MLPs run fastest on one thread); None: unchanged."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
