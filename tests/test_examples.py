"""Every example runs in smoke mode (the lift example is covered in test_lift.py)."""

import importlib.util
import json
import os


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_imitate_clip_example(tmp_path, capsys):
    assert _load("imitate_clip").main(["--smoke", "--out-dir", str(tmp_path)]) == 0
    assert "fail-safe rollout" in capsys.readouterr().out
    with open(tmp_path / "imitate.json") as f:
        assert len(json.load(f)["curve"]) == 3
    assert (tmp_path / "imitate.gif").exists()
    from ptjax import render
    assert (tmp_path / "physics.gif").exists() == render.available()[0]


def test_hallucinate_example(tmp_path, capsys):
    assert _load("hallucinate").main(["--smoke", "--out-dir", str(tmp_path)]) == 0
    assert "bone-length deviation" in capsys.readouterr().out
    with open(tmp_path / "measures.json") as f:
        assert json.load(f)["bone_length_dev_max_m"] < 0.02
    assert (tmp_path / "sample.gif").exists()


def test_run_round_example(tmp_path, capsys):
    assert _load("run_round").main(["--smoke", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "first PPO update" in out and "| round |" in out
    assert (tmp_path / "metrics.json").exists()
