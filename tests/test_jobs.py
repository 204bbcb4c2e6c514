"""Background jobs and the bounded queue (kamoe/jobs.py), without any app."""

from __future__ import annotations

import threading
import time

from kamoe.jobs import Job, JobQueue, default_capacity


def gated_job(gate: threading.Event, seen: list, lock: threading.Lock, counter: dict) -> Job:
    """A job that counts how many run at once and waits for ``gate`` before finishing."""

    def work(job: Job) -> str:
        with lock:
            counter["now"] += 1
            counter["peak"] = max(counter["peak"], counter["now"])
            seen.append(job.id)
        gate.wait(10)
        with lock:
            counter["now"] -= 1
        return job.id

    return Job(work, kind="train")


def test_at_most_capacity_jobs_run_and_the_rest_wait_in_order():
    queue = JobQueue(capacity=2)
    gate, seen, lock, counter = threading.Event(), [], threading.Lock(), {"now": 0, "peak": 0}
    jobs = [queue.submit(gated_job(gate, seen, lock, counter)) for _ in range(5)]
    deadline = time.time() + 10
    while len(seen) < 2 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # give a third job the chance to start, if the bound were broken
    assert [j.status for j in jobs] == ["running", "running", "queued", "queued", "queued"]
    assert [j.progress().position for j in jobs[2:]] == [1, 2, 3]  # place in line
    assert queue.counts() == (2, 3)
    gate.set()
    assert all(j.join(10) for j in jobs)
    assert counter["peak"] == 2 and queue.peak_running == 2 and queue.peak_waiting == 3
    assert [j.result for j in jobs] == [j.id for j in jobs]  # each its own result
    assert seen[:2] == [jobs[0].id, jobs[1].id]  # started in submission order
    assert all(j.collect() for j in jobs) and not any(j.collect() for j in jobs)  # once


def test_a_waiting_job_can_be_cancelled_and_a_running_one_stopped():
    queue = JobQueue(capacity=1)

    def until_stopped(job: Job) -> str:
        while not job.stop.is_set():
            time.sleep(0.01)
        return "stopped cleanly"

    first = queue.submit(Job(until_stopped))
    second = queue.submit(Job(until_stopped))
    third = queue.submit(Job(until_stopped))
    assert queue.cancel(second) is True  # taken out of the line
    assert second.status == "cancelled" and second.join(0) and third.progress().position == 1
    assert queue.cancel(first) is False  # running: asked to stop instead
    assert first.join(10) and first.status == "stopped" and first.result == "stopped cleanly"
    assert third.join(0.5) is False and third.status == "running"  # the next one started
    third.request_stop()
    assert third.join(10)


def test_capacity_defaults_to_the_cores_or_the_environment(monkeypatch):
    import os

    monkeypatch.delenv("KAMOE_MAX_TRAININGS", raising=False)
    assert default_capacity() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("KAMOE_MAX_TRAININGS", "3")
    assert default_capacity() == 3 and JobQueue().capacity == 3
    queue = JobQueue(capacity=1)
    queue.set_capacity(4)
    assert queue.capacity == 4


def test_a_failing_job_frees_its_place():
    queue = JobQueue(capacity=1)

    def crash(job: Job) -> None:
        raise RuntimeError("boom")

    bad = queue.submit(Job(crash))
    good = queue.submit(Job(lambda job: "ok"))
    assert bad.join(5) and good.join(5)
    assert bad.status == "error" and "boom" in bad.progress().message
    assert good.status == "done" and good.result == "ok" and queue.counts() == (0, 0)
