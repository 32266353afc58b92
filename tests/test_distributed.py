"""The job layout of `ptjax.distributed` and the `ptjax launch` helper. The two-process co-evolution itself (same
metrics as one process, a killed process, resume in either layout) is tested in test_coevolve.py, beside the
one-process run it is compared with."""

import os

import pytest

from ptjax import distributed, launch

from coevolve_common import ROOT


def test_layout_comes_from_arguments_then_environment():
    assert distributed.layout(environ={}) == distributed.Layout(None, 1, 0)
    env = {"JAX_COORDINATOR_ADDRESS": "node0:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    assert distributed.layout(environ=env) == distributed.Layout("node0:1234", 4, 3)
    assert distributed.layout("host:99", 2, 0, environ=env) == distributed.Layout("host:99", 2, 0)
    assert not distributed.layout(environ={"JAX_NUM_PROCESSES": "1"}).distributed


@pytest.mark.parametrize("args, message", [
    (dict(num_processes=2, process_id=0), "coordinator"),
    (dict(coordinator="nohost", num_processes=2, process_id=0), "HOST:PORT"),
    (dict(coordinator="h:1", num_processes=2, process_id=2), r"\[0, 2\)"),
    (dict(coordinator="h:1", num_processes=0, process_id=0), ">= 1"),
])
def test_bad_layouts_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        distributed.layout(environ={}, **args)
    with pytest.raises(ValueError, match="integer"):
        distributed.layout(environ={"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two"})


def test_launch_reports_a_failing_process():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    assert launch.launch(["data", "list"], 2, cpu_devices=1, env=env) == 0
    assert launch.launch(["coevolve", "--config", "no_such_config.py", "--workdir", "x"], 2, cpu_devices=1,
                         env=env) != 0


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_heartbeat_timeout_is_refused_before_joining(value, monkeypatch):
    monkeypatch.setenv("PTJAX_HEARTBEAT_TIMEOUT_S", value)
    with pytest.raises(ValueError, match="PTJAX_HEARTBEAT_TIMEOUT_S"):
        distributed.initialize(distributed.Layout("localhost:1", 2, 0))


# Words of the runtime (jax 0.9.2's coordination service) and of ptjax, as the surviving process logged them.
_BARRIER_ERROR = ("INTERNAL: Barrier failed because: task is set to ERROR: UNAVAILABLE: Task 1 heartbeat timeout. This "
                  "indicates that the remote task has failed, got preempted, or crashed unexpectedly.")
_RUNTIME_FATAL = ("F1202 00:47:10.682183   12978 client.h:80] Terminating process because the JAX distributed service "
                  "detected fatal errors. absl::Status: UNAVAILABLE: The following tasks are unhealthy (stopped "
                  "sending heartbeats):\n2\n3\nThe tasks have crashed. Check the task logs for an earlier error")


@pytest.mark.parametrize("text, lost", [
    (_BARRIER_ERROR, [1]),
    (_RUNTIME_FATAL, [2, 3]),
    ("ERROR:ptjax.distributed:ptjax coevolve: process 0 of 4 stops: lost process(es) 1, 3 of the job", [1, 3]),
    ("UNKNOWN: Gloo AllGather failed: [pair.cc:547] Connection closed by peer [127.0.0.1]:57008", []),
])
def test_the_lost_process_is_read_from_the_runtimes_words(text, lost):
    assert distributed.lost_in_message(text) == lost
    assert distributed.is_peer_failure(RuntimeError(text)) or "lost process" in text
