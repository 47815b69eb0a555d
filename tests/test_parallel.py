"""The engines behind `--cmd`, run for real on this machine: local processes, a Dask scheduler with two workers on
loopback, and a single-node Slurm (munged + slurmctld + slurmd from Debian's packages) started by the fixture."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.utils import jobs as parallel
from pipeline.utils.jobs import dask_engine, slurm_engine
from pipeline.utils.archive import ArchiveWriter, iterate_scp, merge_scps
from pipeline.utils.jobs import JobError, run_jobs
from pipeline.utils.stage import is_done, mark_done

pytestmark = pytest.mark.e2e   # the whole recipe, the job engines or the install: not in tests/run.sh --fast

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
KEYS = [["spk1-utt1", "spk1-utt2"], ["spk2-utt1"], ["spk3-utt1", "spk3-utt2", "spk3-utt3"]]


# ------------------------------------------------------------------------------ job functions the engines ship

def features_for(key: str) -> np.ndarray:
    return np.full((4, 3), float(sum(map(ord, key)) % 97), dtype=np.float32)


def write_ark_job(stem: str, keys: list[str], fail: bool = False, fail_once: str | None = None,
                  die_once: str | None = None) -> dict:
    """A job as a stage writes it (one archive per job, through the one archive writer) that can also fail:
    always (`fail`), on its first attempt only like a transient error (`fail_once`: a flag file), or by killing
    its own process on the first attempt, like a worker lost to the OOM killer or a node failure (`die_once`)."""
    if fail:
        raise ValueError(f"{stem}: told to fail")
    if fail_once and not os.path.exists(fail_once):
        Path(fail_once).touch()
        raise OSError("transient failure on the first attempt")
    if die_once and not os.path.exists(die_once):
        Path(die_once).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    with ArchiveWriter(stem) as writer:
        for key in keys:
            writer.write(key, features_for(key))
    return {"pid": os.getpid(), "scp": str(writer.scp_path)}


def marked_job(stem: str, keys: list[str], **failure) -> str:
    """A job with a done marker, as stages write them: a rerun skips it when its marker is there."""
    directory, name = Path(stem).parent, Path(stem).name
    if is_done(directory, name, "fingerprint"):
        return "skipped"
    write_ark_job(stem, keys, **failure)
    mark_done(directory, name, "fingerprint", [f"{stem}.scp", f"{stem}.ark"])
    return "ran"


def ark_jobs(out: Path) -> list[dict]:
    return [dict(stem=str(out / f"feats.{i}"), keys=keys) for i, keys in enumerate(KEYS)]


def check_archives(out: Path, indices: list[int]) -> None:
    """Every job's archive is complete and readable, and the merged table holds every key once."""
    scps = [out / f"feats.{i}.scp" for i in indices]
    expected = [key for i in indices for key in KEYS[i]]
    assert merge_scps(scps, out / "feats.scp") == len(expected)
    for key, matrix in iterate_scp(out / "feats.scp"):
        np.testing.assert_array_equal(matrix, features_for(key))
    assert not list(out.glob("*.tmp"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------ local

def test_local_runs_every_job_and_writes_its_archive(tmp_path):
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "feats.2.log").write_text("an earlier run\n")  # logs are appended to, never replaced
    results = run_jobs(write_ark_job, ark_jobs(tmp_path), nj=2, log_dir=tmp_path / "log", name="feats")
    assert len(results) == 3 and all(r["pid"] != os.getpid() for r in results)  # ran in worker processes
    check_archives(tmp_path, [0, 1, 2])
    log_text = (tmp_path / "log" / "feats.2.log").read_text()  # job j = jobs[j-1], its log feats.j.log
    assert log_text.startswith("an earlier run\n") and "job 2 finished" in log_text


def test_local_reports_failed_job_by_index_after_running_the_others(tmp_path):
    jobs = ark_jobs(tmp_path)
    jobs[1]["fail"] = True
    with pytest.raises(JobError) as caught:
        run_jobs(write_ark_job, jobs, nj=2, log_dir=tmp_path / "log", name="feats", retries=1)
    [failure] = caught.value.failures
    assert failure.index == 1 and failure.attempts == 2
    assert "ValueError" in failure.error and "told to fail" in failure.error
    assert failure.number == 2 and failure.log == (tmp_path / "log" / "feats.2.log").resolve()
    assert "told to fail" in failure.log.read_text() and "job 2 [" in str(caught.value)
    check_archives(tmp_path, [0, 2])


def test_local_with_one_job_slot_runs_in_process_and_retries(tmp_path):
    jobs = [dict(ark_jobs(tmp_path)[0], fail_once=str(tmp_path / "flag"))]
    [result] = run_jobs(write_ark_job, jobs, nj=1, retries=1)
    assert result["pid"] == os.getpid()


def test_local_worker_killed_is_reported_with_what_to_do(tmp_path):
    jobs = ark_jobs(tmp_path)[:2]
    jobs[1]["die_once"] = str(tmp_path / "die.flag")
    with pytest.raises(JobError, match=r"(?s)a local worker process died.*SIGKILL.*lower --nj.*rerun the stage"):
        run_jobs(write_ark_job, jobs, nj=2)


def test_unknown_cmd_is_rejected_with_the_accepted_forms():
    with pytest.raises(JobError, match="dask://HOST:PORT.*slurm"):
        run_jobs(write_ark_job, [{}], nj=1, cmd="sge")


def test_cmd_values_are_parsed():
    assert parallel.parse_cmd("dask://10.0.0.5:8786") == ("dask", "tcp://10.0.0.5:8786")
    assert parallel.parse_cmd("slurm:--partition=cpu --time=1:00:00") == ("slurm",
                                                                           ["--partition=cpu", "--time=1:00:00"])
    assert parallel.parse_cmd("slurm") == ("slurm", [])


# ------------------------------------------------------------------------------ dask

def _kill_group(proc: subprocess.Popen) -> None:
    """End a process we started in its own session, and whatever it forked (a nanny's worker)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory):
    """A `dask scheduler` and two `dask worker` processes (each a nanny and one single-thread worker) on 127.0.0.1."""
    pytest.importorskip("distributed", reason="the `distributed` package is not installed")
    from distributed import Client

    workdir = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]))  # workers import this module
    common = dict(cwd=workdir, env=env, start_new_session=True, stdin=subprocess.DEVNULL)
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                               "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
                              stdout=open(workdir / "scheduler.log", "w"), stderr=subprocess.STDOUT, **common)]
    try:
        for w in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--host", "127.0.0.1",
                                           "--nthreads", "1", "--no-dashboard", "--local-directory", str(workdir)],
                                          stdout=open(workdir / f"worker{w}.log", "w"), stderr=subprocess.STDOUT,
                                          **common))
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=40)
        yield address.replace("tcp://", "dask://")
    finally:
        for proc in reversed(procs):
            _kill_group(proc)


def test_dask_runs_jobs_on_two_worker_processes(dask_scheduler, tmp_path):
    results = run_jobs(write_ark_job, ark_jobs(tmp_path), nj=3, cmd=dask_scheduler, name="feats",
                       log_dir=tmp_path / "log", timeout=60)
    check_archives(tmp_path, [0, 1, 2])
    pids = {r["pid"] for r in results}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert "job 3 finished" in (tmp_path / "log" / "feats.3.log").read_text()


def test_dask_spreads_jobs_over_both_workers(dask_scheduler, tmp_path):
    import distributed

    with distributed.Client(dask_scheduler.replace("dask://", "tcp://"), set_as_default=False) as client:
        worker_pids = set(client.run(os.getpid).values())
    results = run_jobs(_sleepy_pid, [{"seconds": 0.5}] * 4, nj=4, cmd=dask_scheduler, timeout=60)
    assert set(results) == worker_pids and len(worker_pids) == 2


def _sleepy_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_dask_reports_failed_job_by_index_with_its_exception(dask_scheduler, tmp_path):
    jobs = ark_jobs(tmp_path)
    jobs[2]["fail"] = True
    with pytest.raises(JobError) as caught:
        run_jobs(write_ark_job, jobs, nj=3, cmd=dask_scheduler, name="feats", log_dir=tmp_path / "log",
                 retries=1, timeout=60)
    [failure] = caught.value.failures
    assert failure.index == 2 and "ValueError" in failure.error and "told to fail" in failure.error
    assert failure.engine_id.startswith("dask feats-3-") and "write_ark_job" in failure.traceback
    assert (tmp_path / "log" / "feats.3.log").read_text().count("told to fail") >= 2  # both attempts logged
    check_archives(tmp_path, [0, 1])


def test_dask_retries_a_transient_failure_and_a_lost_worker(dask_scheduler, tmp_path):
    jobs = ark_jobs(tmp_path)[:2]
    jobs[0]["fail_once"] = str(tmp_path / "fail.flag")
    # A worker killed mid-job: the scheduler reruns the job on a live worker (its nanny restarts the dead one).
    jobs[1]["die_once"] = str(tmp_path / "die.flag")
    run_jobs(write_ark_job, jobs, nj=2, cmd=dask_scheduler, retries=1, timeout=60)
    assert (tmp_path / "fail.flag").exists() and (tmp_path / "die.flag").exists()  # the first attempts did fail
    check_archives(tmp_path, [0, 1])


def test_dask_rerun_redoes_only_jobs_without_done_marker(dask_scheduler, tmp_path):
    jobs = ark_jobs(tmp_path)
    jobs[1]["fail"] = True
    with pytest.raises(JobError, match="job 2 "):
        run_jobs(marked_job, jobs, nj=3, cmd=dask_scheduler, retries=0, timeout=60)
    jobs[1]["fail"] = False
    assert run_jobs(marked_job, jobs, nj=3, cmd=dask_scheduler, retries=0, timeout=60) == ["skipped", "ran", "skipped"]
    check_archives(tmp_path, [0, 1, 2])


def test_dask_unreachable_scheduler_says_how_to_start_one(monkeypatch):
    monkeypatch.setattr(dask_engine, "DASK_CONNECT_TIMEOUT_S", 1.0)
    expected = r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:\d+.*`dask scheduler.*`dask worker"
    with pytest.raises(JobError, match=expected):
        run_jobs(write_ark_job, [{}], nj=1, cmd=f"dask://127.0.0.1:{free_port()}")


# ------------------------------------------------------------------------------ slurm

SLURM_BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scancel"]


@pytest.fixture(scope="module")
def slurm_cluster():
    """A single-node Slurm on loopback, started and stopped by tests/slurm/{start,stop}_slurm.sh."""
    missing = [b for b in SLURM_BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"Slurm binaries absent: {', '.join(missing)} not on PATH (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("the single-node Slurm of tests/slurm runs slurmd as root (SlurmdUser=root): run as root")
    # Short path: the munge socket path must fit in a unix socket address (108 bytes).
    workdir = Path(tempfile.mkdtemp(prefix="gmm-slurm-"))
    old_conf = os.environ.get("SLURM_CONF")
    try:
        started = subprocess.run(["bash", str(TESTS / "slurm" / "start_slurm.sh"), str(workdir), str(free_port()),
                                  str(free_port())], capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            pytest.fail(f"tests/slurm/start_slurm.sh failed:\n{started.stdout}{started.stderr}")
        os.environ["SLURM_CONF"] = str(workdir / "slurm.conf")
        yield workdir
    finally:
        subprocess.run(["bash", str(TESTS / "slurm" / "stop_slurm.sh"), str(workdir)], capture_output=True, timeout=60)
        if old_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old_conf
        shutil.rmtree(workdir, ignore_errors=True)


def test_slurm_runs_a_job_array_with_one_log_per_task(slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # compute nodes run from the submission directory
    results = run_jobs(write_ark_job, ark_jobs(tmp_path), nj=2, cmd="slurm", name="feats", log_dir="log", timeout=60)
    assert all(r["pid"] != os.getpid() for r in results)
    check_archives(tmp_path, [0, 1, 2])
    for j in (1, 2, 3):  # job j is array task j
        log_text = (tmp_path / "log" / f"feats.{j}.log").read_text()
        assert re.search(rf"job {j} started on .*, slurm \d+_{j}\)", log_text) and f"job {j} finished" in log_text
    script = (tmp_path / "log" / ".feats.slurm" / "feats.sbatch").read_text()
    assert "#SBATCH --output=" in script and "-m pipeline.utils.jobs.slurm_engine" in script


def test_slurm_reports_failed_and_lost_tasks_by_job_id_and_log(slurm_cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(slurm_engine, "RESULT_GRACE_S", 0.5)
    jobs = ark_jobs(tmp_path)
    jobs[1]["fail"] = True
    jobs[2]["die_once"] = str(tmp_path / "die.flag")
    with pytest.raises(JobError) as caught:
        run_jobs(write_ark_job, jobs, nj=3, cmd="slurm", name="feats", log_dir=tmp_path / "log", retries=0, timeout=60)
    failed, lost = caught.value.failures
    assert failed.index == 1 and "told to fail" in failed.error
    assert re.fullmatch(r"slurm \d+_2", failed.engine_id)
    assert failed.log == tmp_path / "log" / "feats.2.log" and "told to fail" in failed.log.read_text()
    assert failed.engine_id.split()[1] in str(caught.value) and str(failed.log) in str(caught.value)
    assert lost.index == 2 and re.fullmatch(r"slurm \d+_3", lost.engine_id)
    assert lost.error.startswith("lost:") and "job 3 started" in lost.error  # the log's tail is quoted
    check_archives(tmp_path, [0])


def test_slurm_retries_failed_tasks_and_rerun_redoes_only_unfinished(slurm_cluster, tmp_path):
    jobs = ark_jobs(tmp_path)
    jobs[1]["fail_once"] = str(tmp_path / "fail.flag")
    jobs[2]["fail"] = True
    with pytest.raises(JobError) as caught:
        run_jobs(marked_job, jobs, nj=3, cmd="slurm", name="marked", log_dir=tmp_path / "log", retries=1, timeout=60)
    assert [(f.index, f.attempts) for f in caught.value.failures] == [(2, 2)]
    log_text = (tmp_path / "log" / "marked.2.log").read_text()
    assert log_text.count("job 2 started") == 2 and "transient failure" in log_text  # both attempts in one log

    jobs[2]["fail"] = False
    assert run_jobs(marked_job, jobs, nj=3, cmd="slurm", name="marked", log_dir=tmp_path / "log", retries=0,
                    timeout=60) == ["skipped", "skipped", "ran"]
    check_archives(tmp_path, [0, 1, 2])


def test_slurm_submission_error_is_reported(slurm_cluster, tmp_path):
    with pytest.raises(JobError, match="sbatch could not submit.*(?i:invalid partition)"):
        run_jobs(write_ark_job, ark_jobs(tmp_path), nj=1, cmd="slurm:--partition=nosuchpartition",
                 log_dir=tmp_path / "log", timeout=60)


# An `sbatch --parsable --wait --array=SPEC SCRIPT` that records SPEC, then runs the array's tasks here one after
# another, each appending to the log the script's `#SBATCH --output` names: the engine's side of Slurm, without one.
FAKE_SBATCH = """#!/bin/bash
for a in "$@"; do case $a in --array=*) spec=${a#--array=} ;; esac; done
script=${!#}
echo "$spec" >> "$SBATCH_LOG"
echo 4242
output=$(sed -n 's/^#SBATCH --output=//p' "$script")
for part in $(echo "${spec%%%*}" | tr , ' '); do
  for ((t = ${part%-*}; t <= ${part#*-}; t++)); do
    SLURM_ARRAY_JOB_ID=4242 SLURM_ARRAY_TASK_ID=$t bash "$script" >> "$(echo "$output" | sed "s/%a/$t/")" 2>&1
  done
done
"""


def test_slurm_retries_resubmit_only_the_failed_tasks_as_array_ranges(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_LOG", str(tmp_path / "sbatch.log"))
    jobs = [dict(stem=str(tmp_path / f"feats.{i}"), keys=[f"spk{i}-utt1"]) for i in range(4)]
    for i in (0, 1, 3):
        jobs[i]["fail_once"] = str(tmp_path / f"fail.{i}")
    results = run_jobs(write_ark_job, jobs, nj=2, cmd="slurm", name="feats", log_dir=tmp_path / "log", retries=1,
                       timeout=120)
    assert len(results) == 4 and all(r["pid"] != os.getpid() for r in results)
    # jobs 1, 2 and 4 (array tasks = job numbers) again, at most nj=2 at a time
    assert (tmp_path / "sbatch.log").read_text().split() == ["1-4%2", "1-2,4%2"]
    assert "transient failure" in (tmp_path / "log" / "feats.4.log").read_text()


def test_missing_sbatch_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    with pytest.raises(JobError, match="needs Slurm's `sbatch` on PATH.*apt-get install slurm-client.*--cmd local"):
        run_jobs(write_ark_job, ark_jobs(tmp_path), nj=1, cmd="slurm", log_dir=tmp_path / "log")
