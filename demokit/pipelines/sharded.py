"""Collection across processes: every rank of a ``torchrun`` launch collects a shard, rank 0 combines.

Run it with torchrun (one machine or several; the output's folder must then be shared)::

    torchrun --nproc-per-node 2 -m demokit collect --policy ppo --env CartPole-v1 --episodes 1000 --out d.h5
    demokit collect ... --nproc 2        # the same: demokit starts torchrun's launcher itself

How the work is split, so that N processes write what one process would: the ``E`` episodes
``first_episode .. first_episode + E - 1`` are cut into N contiguous runs
(:func:`demokit.il.distributed.shard_bounds`); rank r collects its run as a shard
(``collect_demo_data(..., first_episode=lo)``: episode k is still reset with seed + k and
samples its actions from the generator of (seed, k)) into ``rank-<r>.h5`` of a folder
``.<out name>.shards-<pid>`` beside the output; when every rank has finished, rank 0 combines
the shards in rank order (:func:`demokit.data.combine.combine_datasets`) into the output
(created, replaced or appended to as ``mode`` says) and removes the folder. The combined
arrays are those of the one-process collection with the same seed (greedy or per-episode
sampled actions do not depend on the batch layout; see :mod:`demokit.pipelines.collect`).

Failure. The ranks tell each other their outcome (one ``all_gather_object`` over torchrun's
gloo process group); if any rank failed, nothing is combined, every shard is removed and rank
0 raises one :class:`~demokit.errors.UserError` naming the rank and its error. A rank that dies
(``kill -9``) makes torchrun stop the others (SIGTERM: they drop their shards); the output is
only ever written by the final combine, whose commit is atomic, so it is never half-written.
Shard folders left by processes killed outright are removed by the next sharded collection
into the same output (their owner's pid is dead) and by ``demokit collect --nproc`` itself.
Ctrl-C keeps nothing of a sharded collection (the shards would not be one contiguous run of
episodes).

An ``--append`` target whose env, spaces or extras do not match is refused by every rank before
it collects (``collect_demo_data(..., append_target=out)``; nothing is written, the shards are
removed); the combine checks again (the env specs too).

Limits: an episode budget only (``n_steps`` would need the lengths of every earlier episode
before a rank could know where its share starts), a named expert must exist (every rank
would train it), and an explicit output path.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import time
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from demokit.errors import UserError
from demokit.runtime import ProgressFn


def shards_dir_pattern(out: Path) -> re.Pattern[str]:
    return re.compile(r"^\." + re.escape(out.name) + r"\.shards-(\d+)$")


def remove_stale_shards(out: Path) -> list[Path]:
    """Remove ``.<name>.shards-<pid>`` folders beside ``out`` whose owner process is dead."""
    from demokit.data.locking import remove_dead_owners

    return remove_dead_owners(out.parent, shards_dir_pattern(out), shutil.rmtree)
    for entry in entries:
        m = pattern.match(entry.name)
        if m and entry.is_dir() and not pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _process_group() -> tuple[Any, bool]:
    """torch.distributed, joined through torchrun's environment (gloo); True when this call joined it."""
    import torch.distributed as dist

    if dist.is_initialized():
        return dist, False
    # a rank may wait for the slowest rank's whole collection: a long timeout (torchrun stops the
    # group at once when a rank dies, so this only bounds a rank that hangs)
    dist.init_process_group(backend="gloo", timeout=datetime.timedelta(hours=24))
    return dist, True


def collect_sharded(policy: Any, env_id: str | None, path: str | os.PathLike[str] | None, *,
                    n_episodes: int | None, n_steps: int | None = None, seed: int | None = None,
                    first_episode: int | None = None, mode: str | None = None,
                    progress: ProgressFn | None = None, **config: Any) -> Any:
    """This rank's part of a sharded collection (see the module docstring).

    Returns the :class:`~demokit.pipelines.collect.CollectResult` of the combined dataset on
    rank 0 and None on the other ranks. Raises on rank 0 when any rank failed (nothing written).
    """
    from demokit.pipelines.collect import CollectResult, collect_demo_data

    dist, joined = _process_group()
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        shard: Path | None = None
        shards_dir: Path | None = None
        error: BaseException | None = None
        result = None
        try:
            out, lo, hi, e_total = _plan(path, n_episodes, n_steps, first_episode, mode, rank, world)
            if rank == 0:
                remove_stale_shards(out)
                shards_dir = out.parent / f".{out.name}.shards-{os.getpid()}"
                shards_dir.mkdir(parents=True)
        except BaseException as exc:  # noqa: BLE001 - every rank must reach the exchange below
            error = exc
        box: list[Any] = [str(shards_dir) if shards_dir is not None else None]
        _collective(dist.broadcast_object_list, box, src=0)
        if error is None and box[0] is None:
            error = UserError("rank 0 could not prepare the shards (see its error)")
        if error is None:
            shards_dir = Path(box[0])
            shard = shards_dir / f"rank-{rank:05d}.h5"
            try:
                with warnings.catch_warnings():
                    if rank != 0:  # every rank would repeat rank 0's warnings
                        warnings.simplefilter("ignore")
                    result = collect_demo_data(
                        policy, env_id, shard, n_episodes=hi - lo, seed=seed, mode="create",
                        progress=_shard_progress(progress, out, lo, hi, e_total, world) if rank == 0 else None,
                        first_episode=lo, train_missing_expert=False,
                        append_target=out if (mode or "create") == "append" else None,
                        **({"eval_episodes": 0} if rank != 0 else {}), **config)
            except KeyboardInterrupt:  # torchrun stops the ranks (one died) or Ctrl-C: keep nothing
                _remove(shard)
                if rank == 0:
                    shutil.rmtree(shards_dir, ignore_errors=True)
                raise KeyboardInterrupt("sharded collection interrupted: nothing was kept") from None
            except BaseException as exc:  # noqa: BLE001
                error = exc
        status = {"rank": rank, "ok": error is None,
                  "error": None if error is None else f"{type(error).__name__}: {error}",
                  "user_error": isinstance(error, UserError),
                  "message": None if error is None else " ".join(str(error).split()),
                  "steps": None if result is None else result.steps,
                  "wall_s": None if result is None else result.wall_s}
        statuses: list[Any] = [None] * world
        try:
            _collective(dist.all_gather_object, statuses, status)
        except KeyboardInterrupt:
            _remove(shard)
            if rank == 0 and shards_dir is not None:
                shutil.rmtree(shards_dir, ignore_errors=True)
            raise
        failed = [s for s in statuses if not s["ok"]]
        if failed:
            _remove(shard)
            if rank == 0 and shards_dir is not None:
                shutil.rmtree(shards_dir, ignore_errors=True)
            if error is not None and (rank == 0 or not isinstance(error, UserError)):
                raise error  # a rank reports its own error (internal ones with their traceback)
            if rank != 0:
                return None  # rank 0 reports (one error line); this rank ends quietly
            first = failed[0]
            same = all(s["message"] == first["message"] for s in failed)
            who = "every rank" if same and len(failed) == world else f"rank {first['rank']} of {world}"
            raise UserError(f"{first['message'] if first['user_error'] else first['error']} ({who} failed; "
                            f"nothing was written to {path}, the shards were removed)")
        if rank != 0:
            return None
        assert shards_dir is not None and result is not None
        try:
            return _combine(result, statuses, shards_dir, out, mode or "create", e_total, world, CollectResult)
        finally:
            shutil.rmtree(shards_dir, ignore_errors=True)
    finally:
        if joined:
            dist.destroy_process_group()


def _collective(fn: Any, *args: Any, **kwargs: Any) -> None:
    """A collective of the process group; a peer that is gone (stopped by torchrun, killed) ends this
    rank as an interrupt (the launcher reports the rank that failed), not with gloo's traceback."""
    try:
        fn(*args, **kwargs)
    except RuntimeError as exc:
        raise KeyboardInterrupt(f"a peer rank stopped: {exc}") from None


def _shard_progress(progress: ProgressFn | None, out: Path, lo: int, hi: int, e_total: int, world: int
                    ) -> ProgressFn | None:
    """Rank 0's progress, its start event naming the output and the share instead of the shard file."""
    if progress is None:
        return None

    def report(info: Mapping[str, Any]) -> None:
        if info.get("event") == "start":
            info = {**info, "path": f"{out} (rank 0 of {world} collects episodes {lo}-{hi - 1} of {e_total})"}
        progress(info)

    return report


def _plan(path: Any, n_episodes: int | None, n_steps: int | None, first_episode: int | None, mode: str | None,
          rank: int, world: int) -> tuple[Path, int, int, int]:
    """(output, this rank's [lo, hi) episodes, E): the checks every rank makes before any work."""
    from demokit.il.distributed import shard_bounds

    if n_steps is not None:
        raise UserError("a collection across processes takes an episode budget (--episodes): with --steps no rank "
                        "knows where its share starts before every earlier episode has ended")
    if n_episodes is None or n_episodes < 1:
        raise UserError(f"give the number of episodes to collect (--episodes), got {n_episodes}")
    if n_episodes < world:
        raise UserError(f"--episodes {n_episodes} cannot be split across {world} processes: give at least one "
                        f"episode per process")
    if path is None:
        raise UserError("a collection across processes needs --out (the combined dataset)")
    out = Path(path)
    if (mode or "create") == "create" and out.exists():
        raise UserError(f"dataset {out} already exists; use --append to add episodes to it or --force to replace it")
    f = int(first_episode or 0)
    a, b = shard_bounds(n_episodes, rank, world)
    return out, f + a, f + b, n_episodes


def _remove(shard: Path | None) -> None:
    if shard is not None:
        for p in (shard, *shard.parent.glob(f".{shard.name}.*")):
            try:
                p.unlink()
            except OSError:
                pass


def _combine(result: Any, statuses: list[Mapping[str, Any]], shards_dir: Path, out: Path, mode: str, e_total: int,
             world: int, result_type: Any) -> Any:
    """Rank 0: the shards in rank order into ``out``; the result of the whole collection."""
    from demokit.data.combine import combine_datasets
    from demokit.data.dataset import load_dataset

    t0 = time.perf_counter()
    shards = [shards_dir / f"rank-{r:05d}.h5" for r in range(world)]
    prov = dict(result.provenance)
    first = int(prov.get("first_episode") or 0)
    prov.update({"n_episodes": e_total, "command": prov.get("command"),
                 "sharded": {"world_size": world, "launcher": "torchrun",
                             "shards": [{"rank": s["rank"], "steps": s["steps"], "wall_s": s["wall_s"]}
                                        for s in statuses],
                             "note": "rank r collected a contiguous run of the episodes; the shards were combined "
                                     "in rank order"}})
    if first:
        prov["first_episode"] = first
    else:
        prov.pop("first_episode", None)
    combined = combine_datasets(shards, out, mode=mode, compression="keep", provenance=prov)  # type: ignore[arg-type]
    ds = load_dataset(out)
    returns = ds.episode_returns[ds.num_episodes - combined.episodes:] if ds.has_rewards else np.zeros(0)
    wall = max(float(s["wall_s"]) for s in statuses) + (time.perf_counter() - t0)
    return replace(result, path=str(out), episodes=combined.episodes, steps=combined.steps,
                   mean_return=float(returns.mean()) if len(returns) else float("nan"),
                   std_return=float(returns.std()) if len(returns) else float("nan"), wall_s=wall,
                   steps_per_s=combined.steps / max(wall, 1e-9), cut_episodes=0,
                   total_episodes=combined.total_episodes, total_steps=combined.total_steps, provenance=prov)


def launch(argv: list[str], nproc: int, out: Path) -> int:
    """``demokit collect --nproc N``: run ``python -m demokit <argv>`` on N ranks with torchrun's launcher
    (``torch.distributed.launcher.elastic_launch``, a standalone rendezvous on this machine).

    Returns the exit code: 0, that of the rank that reported (2: an error line, 130: interrupted),
    or 1 after one ``error:`` line when a rank died without reporting. Shard folders are removed
    whatever happened.
    """
    import logging
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    for name in list(logging.root.manager.loggerDict):  # the ranks (or this launcher) say what went wrong
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          start_method="spawn")
    code = 0
    try:
        elastic_launch(config, sys.executable)("-m", "demokit", *argv)
    except ChildFailedError as exc:
        codes = {int(rank): f.exitcode for rank, f in exc.failures.items()}
        failed_at = {int(rank): f.timestamp for rank, f in exc.failures.items()}
        killed = {r: c for r, c in codes.items() if c < 0 or c not in (2, 130)}
        if 2 in codes.values():
            # a rank printed its error line and exited 2; the launcher then stops the ranks still running
            # (SIGTERM), which shows as a signal exit of theirs: a consequence, not the cause
            code = 2
        elif killed:  # a rank died without reporting (kill -9, a crash): the others were stopped
            # the first rank to fail is the cause (the launcher then stops the others)
            rank = min(killed, key=lambda r: (failed_at[r], r))
            c = killed[rank]
            how = f"was killed by signal {-c}" if c < 0 else f"exited with status {c}"
            print(f"error: collection rank {rank} of {nproc} {how}; nothing was written to {out} (the shards were "
                  f"removed)", file=sys.stderr)
            code = 1
        else:
            print(f"interrupted: a collection across processes keeps nothing; {out} was not written", file=sys.stderr)
            code = 130
    except (KeyboardInterrupt, SignalException):  # Ctrl-C / SIGTERM: the launcher stopped the ranks
        print(f"interrupted: a collection across processes keeps nothing; {out} was not written", file=sys.stderr)
        code = 130
    finally:
        remove_stale_shards(out)
    return code
