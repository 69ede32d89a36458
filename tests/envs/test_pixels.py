"""demokit.envs.pixels with a MuJoCo base env: off-screen rendering and its failure."""

import os
import subprocess
import sys

import pytest


def test_mujoco_frames_render_off_screen_and_a_missing_backend_is_one_error_line(tmp_path):
    """A MuJoCo pixel env renders without a display (MuJoCo's EGL backend, chosen when the user chose none);
    a backend that cannot render here is one `error:` line naming MUJOCO_GL, exit 2, no traceback, nothing written."""
    pytest.importorskip("mujoco")
    env_id = "pixels84-gray-stack4/Hopper-v5"
    probe = ("import os\nfrom demokit.envs import make_env\nenv = make_env(%r)\nobs, _ = env.reset(seed=0)\n"
             "print(obs.shape, obs.dtype, int(obs.max()) > 0)\n" % env_id)
    clean = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MUJOCO_GL")}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=clean)
    if run.returncode != 0 and "cannot render frames here" in run.stderr:
        pytest.skip("this machine has no EGL for MuJoCo's off-screen rendering")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["(4,", "84,", "84)", "uint8", "True"]
    out = tmp_path / "px.h5"
    cli = subprocess.run([sys.executable, "-m", "demokit", "collect", "--env", env_id, "--policy", "random",
                          "--episodes", "1", "--out", str(out)], capture_output=True, text=True, cwd=tmp_path,
                         env={**clean, "MUJOCO_GL": "glfw"})
    errors = [line for line in cli.stderr.splitlines() if line.startswith("error:")]
    assert cli.returncode == 2 and len(errors) == 1 and "MUJOCO_GL" in errors[0], cli.stderr[-2000:]
    assert "Traceback" not in cli.stderr and not out.exists()
