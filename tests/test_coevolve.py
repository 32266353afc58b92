"""Co-evolution: the whole round loop, and kill-and-resume, in one process and as a job of two processes on JAX's
distributed runtime (CPU collectives over gloo). The parts of a round are tested in test_coevolve_parts.py.

The round-loop tests run on 2 devices (of the 4 conftest forces), the layout a 2-process job with 1 device each
must reproduce; they share compiled programs through the persistent cache."""

import json
import os
import shutil
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from ptjax import coevolve, distributed, launch
from ptjax.data import load_clips

from coevolve_common import CONFIG, DEVICES, ROOT, smoke_config


def _comparable(history):
    """Round records without wall-clock fields."""
    drop = ("phase_seconds", "round_seconds", "gif", "physics_gif")
    return [{k: v for k, v in rec.items() if k not in drop} for rec in history]


def _differences(a, b, path="", rtol: float = 0.0, atol: float = 0.0) -> list[str]:
    """Paths at which two nested records differ, with both values (NaN equals NaN; floats within rtol/atol)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b))
                for d in _differences(a.get(k), b.get(k), f"{path}/{k}", rtol, atol)]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]", rtol, atol)]
    if isinstance(a, float) and isinstance(b, float):
        if np.isnan(a) and np.isnan(b) or abs(a - b) <= atol + rtol * abs(b):
            return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


# What the 1-vs-2-device step test allows: collectives over gloo between processes may sum in another order.
ACROSS_LAYOUTS = dict(rtol=2e-3, atol=2e-4)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("coevolve_full"))
    history = coevolve.run(smoke_config(num_devices=DEVICES), workdir, progress=False)
    return workdir, history


def test_round_loop_writes_metrics_checkpoints_and_pictures(full_run):
    workdir, history = full_run
    config = smoke_config(num_devices=DEVICES)
    assert [r["round"] for r in history] == list(range(config.num_rounds + 1))
    with open(os.path.join(workdir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(history))
    for rec in history:
        e, i = rec["estimator"], rec["imitator"]
        assert all(np.isfinite(e[k]) and e[k] > 0 for k in ("mpjpe_mm", "p_mpjpe_mm"))
        assert e["p_mpjpe_mm"] <= e["mpjpe_mm"] + 1e-6
        assert np.isfinite(e["detector_like_p_mpjpe_mm"]) and e["detector_like_p_mpjpe_mm"] > 0
        assert 0.0 <= i["success_rate"] <= 1.0 and np.isfinite(i["mpjpe_mm"])
        assert os.path.isfile(os.path.join(workdir, rec["gif"]))
        assert set(rec["phase_seconds"]) == set(coevolve.phases_of_round(config, rec["round"]))
    # Round 1 lifted the takes with E and ran the hallucinator and the refinement.
    last = history[-1]
    assert np.isfinite(last["lift"]["ik_error_mm"])
    h = last["hallucinator"]
    assert h.get("bone_length_dev_max_m", 0.0) < 0.02
    if "skipped" not in h:
        assert h["g_total"] is not None and np.isfinite(h["g_total"])
    assert 0 <= last["refine"]["kept"] <= last["refine"]["sampled"]
    assert os.path.isdir(os.path.join(workdir, "checkpoints"))
    assert any(name.startswith("events") for name in os.listdir(os.path.join(workdir, "tensorboard")))
    # A finished workdir is not silently overwritten.
    with pytest.raises(FileExistsError, match="--resume"):
        coevolve.run(smoke_config(num_devices=DEVICES), workdir, progress=False)


def _job_env_base() -> dict:
    """The test process's environment for job processes: one CPU device each (not the 4 conftest forces) and the
    suite's persistent compilation cache."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", PTJAX_CPU_DEVICES="1",
               JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir or "",
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return env


def _start_job(workdir: str, log_dir: str) -> list:
    """Two processes started as a scheduler starts them on two hosts: the same command, JAX_* variables set."""
    port = launch.free_port()
    procs = []
    for i in range(2):
        env = launch.process_env(_job_env_base(), f"localhost:{port}", 2, i, cpu_devices=1)
        log = open(os.path.join(log_dir, f"process_{i}.log"), "w")
        cmd = [sys.executable, "-u", "-m", "ptjax.cli", "coevolve", "--config", CONFIG, "--workdir", workdir,
               "--quiet"]
        procs.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), log))
    return procs


def _wait_for(path: str, procs, timeout_s: float) -> None:
    t0 = time.time()
    while not os.path.exists(path):
        for p, _ in procs:
            assert p.poll() is None, f"a job process exited early with {p.returncode}"
        assert time.time() - t0 < timeout_s, f"{path} did not appear within {timeout_s} s"
        time.sleep(0.1)


def test_two_processes_match_one_process_survive_a_kill_and_resume_in_either_layout(full_run, tmp_path):
    """The uninterrupted reference is `full_run` (1 process, 2 devices). The job's per-round metrics (round 0 before
    the kill, round 1 after the resume) must match it; so must a 1-process resume of the job's checkpoint."""
    config = smoke_config(num_devices=DEVICES)
    with open(os.path.join(full_run[0], "metrics.json")) as f:
        reference = json.load(f)

    # Two processes with one device each; process 1 is killed in round 1's imitator phase (the checkpoint after
    # round 1's lift, number 5, has been written: round 0 has imitate, rollout, estimate and evaluate).
    workdir, logs = str(tmp_path / "two_processes"), tmp_path / "logs"
    logs.mkdir()
    procs = _start_job(workdir, str(logs))
    try:
        _wait_for(os.path.join(workdir, "checkpoints", "5"), procs, timeout_s=1200)  # orbax renames it when done
        killed_at = time.time()
        procs[1][0].kill()
        code = procs[0][0].wait(timeout=60)
        stopped_after = time.time() - killed_at
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
    survivor = (logs / "process_0.log").read_text()
    assert code != 0 and stopped_after < 60
    # ptjax's line, or the runtime's own fatal message when the coordination service's verdict ends it first.
    assert distributed.lost_in_message(survivor) == [1], survivor[-3000:]

    # A checkpoint written by two processes restores in one process with two devices and finishes the run ...
    moved = str(tmp_path / "moved")
    shutil.copytree(workdir, moved)
    moved_history = coevolve.run(config, moved, resume=True, progress=False)
    assert not _differences(_comparable(moved_history), _comparable(reference), **ACROSS_LAYOUTS)

    # ... and `--resume` on both processes (started by `ptjax launch`) reaches the same final metrics.
    assert launch.launch(["coevolve", "--config", CONFIG, "--workdir", workdir, "--quiet", "--resume"], 2,
                         cpu_devices=1, env=_job_env_base()) == 0
    with open(os.path.join(workdir, "metrics.json")) as f:
        resumed = json.load(f)
    assert [r["round"] for r in resumed] == [0, 1]
    assert not _differences(_comparable(resumed), _comparable(reference), **ACROSS_LAYOUTS)


def test_a_run_resumes_only_on_as_many_devices_as_it_was_checkpointed_on(full_run, tmp_path):
    workdir, _ = full_run
    moved = str(tmp_path / "moved")
    shutil.copytree(workdir, moved)
    with pytest.raises(ValueError, match="checkpointed on 2 devices and this job has 4"):
        coevolve.run(smoke_config(num_devices=4), moved, resume=True, progress=False)


def test_cli_runs_the_main_job(tmp_path, capsys):
    from ptjax import cli
    workdir = str(tmp_path / "run")
    rc = cli.main(["coevolve", "--config", CONFIG, "--workdir", workdir, "--quiet", "--config.num_rounds=0",
                   f"--config.num_devices={DEVICES}"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| round |" in out
    with open(os.path.join(workdir, "metrics.json")) as f:
        assert len(json.load(f)) == 1


def test_the_runs_estimator_lifts_and_scores(full_run, tmp_path, capsys):
    """After the main job, `ptjax lift` and `ptjax eval` take its workdir (the last round's estimator, or
    --round N), and `ptjax export-estimator` writes a stand-alone estimator workdir."""
    from ptjax import cli
    from ptjax import estimator
    workdir, history = full_run
    last = len(history) - 1
    state, _ = estimator.load(workdir)
    assert int(state.step) > 0
    pixels = 500 + 300 * load_clips(["walk"])["walk"].joints[:40, :, 1:]                 # any 2D will do
    np.savez(tmp_path / "k.npz", keypoints=pixels, image_size=[1000, 1000])
    out = tmp_path / "lifted.npz"
    assert cli.main(["lift", str(tmp_path / "k.npz"), "--format", "h36m", "--checkpoint", workdir,
                     "--out", str(out)]) == 0
    assert f"round {last} of the co-evolution run" in capsys.readouterr().out
    data = np.load(out)
    keypoints, lifted = data["keypoints2d"], data["joints3d"]
    np.testing.assert_allclose(lifted, estimator.predict(state, keypoints)["joints3d"], atol=1e-5)
    assert cli.main(["eval", "--dataset", "clips", "--checkpoint", workdir, "--round", "0"]) == 0
    text = capsys.readouterr().out
    assert "round 0 of the co-evolution run" in text and "P-MPJPE" in text
    assert cli.main(["export-estimator", workdir, str(tmp_path / "est")]) == 0
    exported, _ = estimator.load(str(tmp_path / "est"))
    np.testing.assert_allclose(estimator.predict(exported, keypoints)["joints3d"], lifted, atol=1e-5)
    # Errors name what is there.
    with pytest.raises(FileNotFoundError, match=r"rounds \[0, 1\], not round 7"):
        estimator.load(workdir, round_index=7)
    with pytest.raises(ValueError, match="co-evolution workdir"):
        estimator.load(str(tmp_path / "est"), round_index=0)
