"""No accepted job is lost: the job store's open set, the reconciler, and fault drills with a real
Redis (append-only file, as `make up` runs it) and real workers."""
from __future__ import annotations

import json
import signal
import time

import pytest
from stack import ARTIFACTS, finished, open_store, stack_env, start_redis, start_worker, stop, wait_for
from workers import kill_group, leftover_files, start_workers, stop_group

from conftest import make_audio
from shared.service import registry
from shared.service.queue import ANALYZE, QUEUE, make_celery
from shared.service.reconcile import reconcile
from shared.service.settings import Settings


# --- The reconciler, on its own (a real Redis, no worker).

@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    """A Redis of these tests' own: the session's has a worker whose reconciler would act too."""
    proc, url = start_redis(tmp_path_factory.mktemp("reconcile"))
    yield url
    stop(proc)


@pytest.fixture
def bare_store(own_redis, tmp_path):
    store = open_store(Settings(redis_url=own_redis, database_url=f"sqlite:///{tmp_path / 'genre.db'}"))
    yield store
    store.redis.flushdb()


GRACE_S = 10
HEARTBEAT_S = 5


def turns(store, *times: float) -> list[tuple[str, str]]:
    """Runs the reconciler at each of ``times``; what it queued again, as (kind, id)."""
    sent = []
    for now in times:
        reconcile(store, GRACE_S, HEARTBEAT_S, lambda kind, rid: sent.append((kind, rid)), now=now)
    return sent


def test_a_job_in_no_queue_and_on_no_worker_is_queued_again_after_the_grace(bare_store):
    store = bare_store
    record = store.create("job")
    assert turns(store, 1000, 1005, 1010) == [("job", record["id"])]


def test_a_lost_job_is_not_queued_again_before_the_grace_has_passed(bare_store):
    store = bare_store
    store.create("job")
    assert turns(store, 1000, 1005, 1009) == []


def test_a_job_waiting_in_the_queue_is_left_alone(bare_store):
    store = bare_store
    record = store.create("job")
    store.redis.lpush(QUEUE, json.dumps({"headers": {"id": record["id"]}, "body": ""}))
    assert turns(store, 1000, 1005, 1010, 1015) == []


def test_a_job_held_by_a_live_worker_is_left_alone(bare_store):
    store = bare_store
    record = store.create("job")
    registry.beat(store.redis, "w1@host", {"name": "w1@host", "held": [record["id"]]}, 5)
    assert turns(store, 1000, 1005, 1010, 1015) == []


def test_a_finished_job_leaves_the_open_set(bare_store):
    store = bare_store
    record = store.create("job")
    store.succeed("job", record["id"], result={})
    assert store.open_records() == []


def test_an_open_mark_whose_record_is_nowhere_leaves_the_open_set_without_being_queued(bare_store):
    store = bare_store
    record = store.create("job", durable=False)  # in Redis only, then gone from it too
    store.redis.delete(f"genre:job:{record['id']}")
    assert (turns(store, 1000), store.open_records()) == ([], [])


def test_what_was_seen_before_a_long_pause_in_turns_does_not_count(bare_store):
    # Between the turns Redis was away, or no worker ran: heartbeats lapsed, so a job's holder
    # may not have said so again yet.
    store = bare_store
    store.create("job")
    assert turns(store, 1000, 1100) == []


def test_a_job_queued_again_says_it_is_queued(bare_store):
    store = bare_store
    record = store.create("job")
    store.update("job", record["id"], status="running", stage="analyzing")
    turns(store, 1000, 1005, 1010)
    assert store.get("job", record["id"])["status"] == "queued"


# --- Fault drills: a durable Redis that is killed and started again, real workers.

class Drill:
    """A durable Redis on a fixed port and folder (so it can be killed and brought back), a worker,
    and the API's Flask app, all on the same settings."""

    def __init__(self, tmp_path, **env):
        self.folder = tmp_path / "redis"
        self.folder.mkdir()
        self.redis, url = start_redis(self.folder, appendfsync="always")
        self.worker = None
        try:
            self.port = int(url.rsplit(":", 1)[1].split("/")[0])
            self.env = stack_env(tmp_path, url, PRECISION=None, **env)
            self.settings = Settings.from_env(self.env)
            self.store = open_store(self.settings)
            # A literal name (no %h): start_workers waits for this name's heartbeat. Its log is self.log.
            self.name = f"drill-{tmp_path.name}@test"
            self.log = ARTIFACTS / f"drill-{tmp_path.name}.log"
            self.worker = start_workers(self.env, [self.name], ARTIFACTS, self.store)[self.name]
            from api import create_app

            self.client = create_app(self.settings).test_client()
        except BaseException:
            self.close()  # a Redis (and worker) of a drill that never started must not outlive the test
            raise

    def upload(self, path) -> str:
        with open(path, "rb") as f:
            response = self.client.post("/api/v1/jobs", data={"file": (f, path.name)})
        assert response.status_code == 202, response.get_json()
        return response.get_json()["id"]

    def long_job_under_analysis(self, folder) -> str:
        """The id of a four-minute song's job, once a worker is analysing it."""
        job_id = self.upload(make_audio(folder / "long.mp3", 240.0))
        wait_for(lambda: (self.store.get("job", job_id) or {}).get("stage") == "analyzing", 60, "the analysis")
        return job_id

    def wait_until_handed_back(self) -> None:
        wait_for(lambda: "handing the job back" in self.log.read_text(errors="replace"), 60, "the worker to give up")

    def kill_redis(self, how: int = signal.SIGKILL) -> None:
        self.redis.send_signal(how)
        self.redis.wait(30)

    def start_redis_again(self) -> None:
        self.redis, _ = start_redis(self.folder, port=self.port, appendfsync="always")

    def runs_to_the_end(self, job_id: str) -> int:
        """How many times a worker analysed the job to its end (the store keeps one result)."""
        logs = [self.log, self.log.with_suffix(".2.log")]
        return sum(log.read_text(errors="replace").count(f"job {job_id}: analysed to the end")
                   for log in logs if log.exists())

    def close(self) -> None:
        if self.worker is not None:
            stop_group(self.worker)
        stop(self.redis)


@pytest.fixture
def drill(tmp_path):
    made = []

    def make(**env) -> Drill:
        made.append(Drill(tmp_path, **env))
        return made[-1]
    yield make
    for d in made:
        d.close()


def test_redis_killed_right_after_accepted_uploads_loses_none_of_them(drill, tmp_path):
    d = drill()
    songs = [make_audio(tmp_path / f"song{i}.mp3", 8.0, pitch=1 + i / 10) for i in range(4)]
    ids = [d.upload(song) for song in songs]
    d.kill_redis()
    d.start_redis_again()
    ends = [finished(d.client, f"/api/v1/jobs/{i}", timeout=120)["status"] for i in ids]
    assert ends == ["succeeded"] * 4


def test_a_job_running_through_a_redis_outage_succeeds_once_redis_is_back(drill, tmp_path):
    d = drill()
    job_id = d.long_job_under_analysis(tmp_path)
    d.kill_redis(signal.SIGTERM)
    time.sleep(5)
    d.start_redis_again()
    job = finished(d.client, f"/api/v1/jobs/{job_id}", timeout=120)
    assert (job["status"], job["attempt"]) == ("succeeded", 1)


def test_a_worker_that_loses_redis_for_longer_than_it_waits_hands_the_job_back_and_it_succeeds(drill, tmp_path):
    d = drill(REDIS_RETRY_S="1", ORPHAN_GRACE_S="2")
    job_id = d.long_job_under_analysis(tmp_path)
    d.kill_redis(signal.SIGTERM)
    d.wait_until_handed_back()
    # The upload is kept while its job waits to be run again.
    assert [p.name for p in leftover_files(d.settings.storage_dir)] == [f"{job_id}.mp3"]
    d.start_redis_again()
    job = finished(d.client, f"/api/v1/jobs/{job_id}", timeout=180)
    assert (job["status"], job["attempt"]) == ("succeeded", 2)


def test_a_job_of_a_killed_worker_is_finished_exactly_once_by_the_next(drill, tmp_path):
    d = drill(ORPHAN_GRACE_S="2")
    job_id = d.long_job_under_analysis(tmp_path)
    kill_group(d.worker)
    # The same name, as a restarted container has (start_workers would wait for the dead one's heartbeat).
    d.worker = start_worker(d.env, d.name, d.log.with_suffix(".2.log"), youtube_replay=False, own_session=True)
    assert finished(d.client, f"/api/v1/jobs/{job_id}", timeout=180)["status"] == "succeeded"
    assert d.runs_to_the_end(job_id) == 1


def test_a_request_while_redis_hangs_is_answered_503_rather_than_left_waiting(tmp_path):
    proc, url = start_redis(tmp_path)
    from api import create_app

    client = create_app(Settings(redis_url=url)).test_client()
    proc.send_signal(signal.SIGSTOP)  # Redis accepts connections but answers nothing
    try:
        began = time.monotonic()
        status = client.get("/api/v1/jobs/0123456789abcdef0123456789abcdef").status_code
        waited = time.monotonic() - began
    finally:
        proc.send_signal(signal.SIGCONT)
        stop(proc)
    assert (status, waited < 10) == (503, True)


def test_a_job_started_more_times_than_allowed_fails_instead_of_running_again(client, store, settings, tmp_path):
    record = store.create("job", source={"kind": "upload", "title": "crasher"},
                         request={"upload": "x.mp3", "content_key": None}, progress={"done": 0, "total": 0})
    upload = settings.storage_dir / f"{record['id']}.mp3"
    upload.parent.mkdir(parents=True, exist_ok=True)
    make_audio(upload, 3.0)
    store.update("job", record["id"], attempt=settings.max_attempts)  # its worker died each time
    make_celery(settings).send_task(ANALYZE, args=[record["id"]], task_id=record["id"])
    job = finished(client, f"/api/v1/jobs/{record['id']}", timeout=60)
    assert (job["status"], job["error"]["code"], upload.exists()) == ("failed", "internal", False)
