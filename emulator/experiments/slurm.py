"""Campaigns on a Slurm cluster: the points as a job array through submitit, merged after.

`netwall campaign submit` deals the points not yet stored into tasks, whole groups each (a
group is one built network), and submits them as one job array with submitit, which also
runs them on this machine (its local executor) where there is no Slurm. Each task measures
its points with the ordinary campaign runner into a JSON-lines file of its own in the
submission folder; no two tasks ever share a file, and no SQLite file is written over NFS,
where its locking is unreliable. `netwall campaign merge` copies every task file into the
campaign's SQLite store; status and resume then work as for `campaign run`: a point stored,
or waiting in a task file, is not submitted again.

A task file is read back like any store (emulator.experiments.store): a record that fails
the schema is named and refused, and a merge never replaces a stored record with one of
different content (it keeps the stored one and names the other).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import submitit

from emulator.experiments.campaign import Campaign, Point, load
from emulator.experiments.runner import run_campaign
from emulator.experiments.store import NOT_JSON, JsonlStore, Store, open_store, summary
from foundation.errors import NetwallError
from foundation.inputs import is_whole

EXECUTORS = ("slurm", "local")
#: Tasks of one array at most: past it, a campaign is better split (Slurm's default
#: MaxArraySize is 1001).
MAX_TASKS = 1000
#: The longest time limit a task may ask for, minutes (30 days; a site's own is often less).
MAX_TIME_MIN = 30 * 24 * 60


@dataclass(frozen=True)
class Task:
    """What one array task measures: point ids (and the failures run), into `out`."""

    ids: tuple[str, ...]
    out: str


def existing(folder: Path) -> Path:
    """`folder`, which must exist: a merge from a folder no task wrote is one line."""
    if not folder.is_dir():
        raise NetwallError(f"no task folder {folder} (campaign submit writes one; name it "
                           "with --folder)")
    return folder


def task_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("task-*.jsonl"))


def waiting(folder: Path) -> set[str]:
    """Ids some task file holds a usable record of (measured, not yet merged)."""
    ids: set[str] = set()
    for path in task_files(folder):
        ids |= {r["id"] for r in JsonlStore.open(str(path), create=False).records()}
    return ids


def plan_tasks(campaign: Campaign, done: set[str], folder: Path,
               max_tasks: int = MAX_TASKS) -> list[Task]:
    """The points not in `done`, whole groups per task, the groups dealt round robin into
    at most `max_tasks` tasks (the failures run, if due, is a task of its own). Task files
    are numbered after those already in the folder, so a resubmission never reuses one."""
    if not 1 <= max_tasks <= MAX_TASKS:
        raise NetwallError(f"--tasks must be between 1 and {MAX_TASKS}, got {max_tasks}")
    groups: dict[tuple, list[Point]] = {}
    for p in campaign.points:
        if p.id not in done:
            groups.setdefault(p.group, []).append(p)
    lists: list[list[str]] = [[] for _ in range(min(max_tasks, len(groups)))]
    for i, points in enumerate(groups.values()):
        lists[i % len(lists)] += [p.id for p in points]
    if campaign.failures and campaign.failures.id not in done:
        lists.append([campaign.failures.id])
    first = len(task_files(folder))
    return [Task(tuple(ids), str(folder / f"task-{first + k}.jsonl"))
            for k, ids in enumerate(lists)]


def run_task(campaign_file: str, task: Task) -> dict:
    """One array task (in the job, on a compute node): measure its points into its file."""
    campaign = load(campaign_file)
    wanted = set(task.ids)
    mine = replace(campaign, points=[p for p in campaign.points if p.id in wanted],
                   failures=campaign.failures if campaign.failures
                   and campaign.failures.id in wanted else None)
    with open_store(f"jsonl://{task.out}") as store:
        return run_campaign(mine, store)


def submit(campaign_file: str, store: Store, folder: Path, executor: str, max_tasks: int,
           timeout_min: int, partition: str | None) -> list:
    """Submit the campaign's missing points as one job array; returns submitit's jobs."""
    if executor not in EXECUTORS:
        raise NetwallError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor}")
    if not is_whole(timeout_min, 1, MAX_TIME_MIN):
        raise NetwallError(f"--time must be a whole number of minutes from 1 to "
                           f"{MAX_TIME_MIN}, got {timeout_min!r}")
    campaign = load(campaign_file)
    done = {i for i in campaign.ids() if store.has(i)} | waiting(folder)
    tasks = plan_tasks(campaign, done, folder, max_tasks)
    if not tasks:
        return []
    try:
        runner = submitit.AutoExecutor(folder=str(folder / "submitit"), cluster=executor)
    except RuntimeError as e:  # no sbatch on this machine, for one
        raise NetwallError(f"cannot submit to {executor}: {e}") from None
    parameters: dict = {"timeout_min": timeout_min, "name": f"netwall-{campaign.name}"}
    if partition:
        parameters["slurm_partition"] = partition
    runner.update_parameters(**parameters)
    for task in tasks:  # claim each task's file now: a second submit numbers after them
        Path(task.out).touch()
    return runner.map_array(run_task, [str(Path(campaign_file).resolve())] * len(tasks), tasks)


@dataclass
class Merged:
    """What a merge did: records new to the store, records it held already, task files
    read; records refused (bad, or differing from the stored record of their id) and
    lines that were not JSON (a task killed mid-write), each named."""

    new: int = 0
    same: int = 0
    files: int = 0
    refused: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def problem(self) -> str | None:
        """One line naming the refused records, or None."""
        return summary("refused", "record(s)", self.refused)


def merge(folder: Path, store: Store) -> Merged:
    """Every usable record of every task file into `store`, none replacing a stored record
    of different content (idempotent)."""
    files = task_files(existing(folder))
    out = Merged(files=len(files))
    for path in files:
        task = JsonlStore.open(str(path), create=False)
        for problem in task.rejected:
            (out.unreadable if problem.endswith(NOT_JSON) else out.refused).append(problem)
        for record in task.records():
            outcome = store.add(record["id"], record)
            if outcome == "different":
                out.refused.append(f"{path} id {record['id'][:40]!r}: differs from the "
                                   "record stored under that id (kept the stored one)")
            else:
                out.new += outcome == "new"
                out.same += outcome == "same"
    return out
