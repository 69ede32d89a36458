"""The info-free vector env steps exactly as gymnasium's SyncVectorEnv (NEXT_STEP autoreset), minus the infos."""

import numpy as np
import pytest

from demokit.envs import make_vec_env
from demokit.envs.vector import InfoFreeSyncVectorEnv


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_info_free_steps_match_sync_vector_env(env_id):
    plain, lean = make_vec_env(env_id, 3, infos=True), make_vec_env(env_id, 3, infos=False)
    assert isinstance(lean, InfoFreeSyncVectorEnv) and lean._info_free
    assert not isinstance(plain, InfoFreeSyncVectorEnv)
    o1, _ = plain.reset(seed=5)
    o2, _ = lean.reset(seed=5)
    np.testing.assert_array_equal(o1, o2)
    plain.action_space.seed(1)
    autoresets = 0
    steps = 600 if env_id == "CartPole-v1" else 450  # CartPole ends episodes early; Pendulum truncates at 200
    for _ in range(steps):
        a = plain.action_space.sample()
        s1, s2 = plain.step(a), lean.step(a)
        for x, y in zip(s1[:4], s2[:4]):
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype
        assert s2[4] == {}
        assert s2[0] is not lean._observations  # a copy, as SyncVectorEnv(copy=True) returns
        autoresets += int((s1[2] | s1[3]).sum())
    assert autoresets >= 3  # the autoreset step was exercised
    plain.close()
    lean.close()
