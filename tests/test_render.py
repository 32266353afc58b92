"""MuJoCo renders of the humanoid (EGL or OSMesa), and the skeleton fallback where no GL backend exists."""

import numpy as np
import pytest

from ptjax import render


def test_renders_the_body(humanoid_body, tmp_path):
    ok, reason = render.available()
    if not ok:
        pytest.skip(reason)
    rest = humanoid_body.rest_qpos()
    bent = rest.copy()
    bent[humanoid_body.hinge_qpos_adr[0]] = -1.2                      # one hip flexed
    frames = render.render_qpos(humanoid_body.model, np.stack([rest, bent]), width=160, height=120)
    assert frames.shape == (2, 120, 160, 3) and frames.dtype == np.uint8
    assert frames[0].std() > 5                                        # a body on the floor, not a blank image
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 0.1     # the pose shows
    path = render.motion_video(humanoid_body.model, np.stack([rest, bent, rest]), str(tmp_path / "body.gif"),
                               reference_qpos=np.stack([rest, rest]))
    assert open(path, "rb").read(6) in (b"GIF87a", b"GIF89a")
    with pytest.raises(ValueError, match="qpos"):
        render.render_qpos(humanoid_body.model, rest[None, :5])


def test_without_gl_the_skeleton_fallback_runs_with_a_warning(humanoid_body, monkeypatch, tmp_path):
    monkeypatch.setattr(render, "available", lambda: (False, "no MuJoCo GL backend (test)"))
    out = str(tmp_path / "fallback.gif")
    with pytest.warns(UserWarning, match="no MuJoCo GL backend"):
        assert render.motion_video(humanoid_body.model, humanoid_body.rest_qpos()[None], out,
                                   fallback=lambda: out) == out
    with pytest.raises(RuntimeError, match="no MuJoCo GL backend"):
        render.motion_video(humanoid_body.model, humanoid_body.rest_qpos()[None], out)
