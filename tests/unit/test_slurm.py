"""Slurm campaigns without Slurm: tasks take whole groups, task files survive a killed
writer, merge is idempotent and status counts what waits to be merged."""

from __future__ import annotations

import pytest

from emulator.cli.campaign import status
from emulator.experiments.campaign import loads
from emulator.experiments.slurm import merge, plan_tasks, waiting
from emulator.experiments.store import JsonlStore, open_store
from foundation.errors import NetwallError
from tests import records

TEXT = """\
name: c
description: three groups
topologies: [pair, 'ring:3', 'star:4']
links: [copper-800g]
collectives: [allreduce]
algorithms: [ring]
sizes: [64K, 128K]
"""


def test_tasks_take_whole_groups_dealt_round_robin(tmp_path):
    campaign = loads(TEXT)
    tasks = plan_tasks(campaign, set(), tmp_path, max_tasks=2)
    assert len(tasks) == 2
    groups = {p.id: p.group for p in campaign.points}
    for task in tasks:
        for group in {groups[i] for i in task.ids}:
            assert {i for i, g in groups.items() if g == group} <= set(task.ids)
    assert sorted(i for t in tasks for i in t.ids) == sorted(groups)
    assert len({t.out for t in tasks}) == 2


def test_done_points_are_not_submitted_and_files_are_never_reused(tmp_path):
    campaign = loads(TEXT)
    done = {p.id for p in campaign.points if p.topology == "pair"}
    tasks = plan_tasks(campaign, done, tmp_path)
    assert len(tasks) == 2 and not done & {i for t in tasks for i in t.ids}
    (tmp_path / "task-0.jsonl").touch()
    assert plan_tasks(campaign, done, tmp_path)[0].out.endswith("task-1.jsonl")
    with pytest.raises(NetwallError, match="--tasks must be between 1 and 1000"):
        plan_tasks(campaign, done, tmp_path, max_tasks=0)


def test_a_line_cut_short_is_no_record_and_the_next_put_starts_clean(tmp_path):
    path = tmp_path / "task-0.jsonl"
    a, c = records.point(size=4096), records.point(size=8192)
    store = JsonlStore.open(str(path))
    store.put(a.id, records.measured(a))
    with open(path, "a") as f:
        f.write('{"id": "b", "kind": "po')  # a writer killed mid-line
    again = JsonlStore.open(str(path))
    assert again.has(a.id) and not again.has("b")
    again.put(c.id, records.measured(c))
    after = JsonlStore.open(str(path))
    assert sorted(r["id"] for r in after.records()) == sorted([a.id, c.id])
    assert after.rejected == [f"{path} line 2: is not JSON"]


def _task_files(folder, campaign, count):
    """`count` points of `campaign` measured, each in a task file of its own."""
    points = sorted(campaign.points, key=lambda p: p.id)[:count]
    for k, p in enumerate(points):
        JsonlStore.open(str(folder / f"task-{k}.jsonl")).put(p.id, records.measured(p))
    return [p.id for p in points]


def test_merge_fills_the_store_once_and_status_counts_what_waits(tmp_path):
    campaign = loads(TEXT)
    ids = _task_files(tmp_path, campaign, 3)
    assert waiting(tmp_path) == set(ids)
    with open_store(str(tmp_path / "c.sqlite")) as store:
        assert "3 more measured by submitted tasks" in status(campaign, store, tmp_path)
        first = merge(tmp_path, store)
        assert (first.new, first.same, first.files, first.refused) == (3, 0, 3, [])
        again = merge(tmp_path, store)  # idempotent
        assert (again.new, again.same, again.refused) == (0, 3, [])
        assert len(store.records()) == 3
        assert f"3/{len(campaign.ids())} points done" in status(campaign, store, tmp_path)
        assert "submitted tasks" not in status(campaign, store, tmp_path)
