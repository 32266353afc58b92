import json

import ml_collections
import pytest

from ptjax import cli
from ptjax.config import apply_overrides, load_config, split_overrides


def test_data_list_and_show(tmp_path, capsys):
    assert cli.main(["data", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    bundled = [r for r in rows if r["split"] in ("train", "held-out")]
    assert len(bundled) == 20 and sum(r["frames"] for r in bundled) == 1810
    assert len(rows) == 29 and sum(r["frames"] for r in rows) == 1810 + 15973
    gif = tmp_path / "walk.gif"
    assert cli.main(["data", "show", "walk", "--gif", str(gif), "--max-frames", "8"]) == 0
    assert gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert cli.main(["data", "show", "moonwalk"]) == 2
    assert "unknown clip" in capsys.readouterr().err


def test_config_overrides_keep_types_and_reject_typos():
    cfg = ml_collections.ConfigDict({"imitator": {"num_envs": 8, "lr": 1e-3, "name": "a", "flag": False,
                                                  "sizes": (1, 2)}})
    overrides, rest = split_overrides(["--config.imitator.num_envs=4096", "--workdir", "x",
                                       "--config.imitator.lr", "3e-4", "--config.imitator.flag=true",
                                       "--config.imitator.sizes=(3,4,5)"])
    assert rest == ["--workdir", "x"]
    out = apply_overrides(cfg, overrides)
    assert out.imitator.num_envs == 4096 and out.imitator.lr == 3e-4 and out.imitator.flag is True
    assert out.imitator.sizes == (3, 4, 5)
    assert cfg.imitator.num_envs == 8  # the original is untouched
    with pytest.raises(ValueError, match="unknown key"):
        apply_overrides(cfg, ["--config.imitator.num_env=4"])
    with pytest.raises(ValueError, match="expected int"):
        apply_overrides(cfg, ["--config.imitator.num_envs=1.5"])
    with pytest.raises(ValueError, match="no section"):
        apply_overrides(cfg, ["--config.estimator.lr=1"])


@pytest.mark.parametrize("spec", ["configs/demo.py", "configs/demo.py:large", "configs/smoke.py", "configs/h36m.py",
                                  "configs/imitator_walk.py", "configs/hallucinator.py:large",
                                  "configs/estimator_clips.py:large_detector"])
def test_every_config_file_is_locked(spec):
    config = load_config(spec)
    assert config.is_locked and apply_overrides(config, []).is_locked
    with pytest.raises(AttributeError):
        config.seeed = 1


def test_a_misspelt_key_in_a_config_file_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from ptjax.coevolve import default_config\n\n\ndef get_config():\n    c = default_config()\n"
                   "    c.estimator.optim.learning_rat = 1e-3\n    return c\n")
    with pytest.raises(ValueError, match="bad.py.*learning_rat.*cannot be added"):
        load_config(str(bad))


@pytest.mark.parametrize("spec", ["configs/demo.py", "configs/smoke.py", "configs/gpu.py", "configs/h36m.py"])
def test_the_coevolutions_seed_and_frame_rate_reach_its_components_through_overrides(spec):
    """One seed and one frame rate: a component's copy can never silently disagree with the co-evolution's (smoke,
    gpu and h36m replace the hallucinator's config and share them again)."""
    config = apply_overrides(load_config(spec), ["--config.seed=2", "--config.data.fps=25.0"])
    assert [config.estimator.seed, config.imitator.seed, config.hallucinator.seed] == [2, 2, 2]
    assert config.imitator.fps == config.hallucinator.fps == 25.0
    config = apply_overrides(config, ["--config.hallucinator.seed=5"])
    assert config.seed == config.imitator.seed == 5
    assert json.loads(json.dumps(config.to_dict()))["imitator"]["seed"] == 5  # config.json holds plain values


def test_a_replaced_component_that_does_not_share_the_seed_is_refused():
    from ptjax.coevolve import check_config, default_config
    from ptjax.hallucinator import tiny_config
    config = default_config()
    config.seed = 4
    config.hallucinator = tiny_config()
    with pytest.raises(ValueError, match=r"hallucinator.seed \(0\) differs .*share_seed_and_fps"):
        check_config(config, 1)
