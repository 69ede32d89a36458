import numpy as np
import pytest
from gymnasium import spaces

from demokit.errors import SpaceMismatchError, UserError
from demokit.spaces import (check_same_spaces, flat_dim, flatten_batch, same_space, space_from_json, space_to_json)

SPACES = [
    spaces.Box(-1.0, 1.0, (3,), np.float32),
    spaces.Box(low=np.array([0.0, -np.inf]), high=np.array([1.0, np.inf]), dtype=np.float64),
    spaces.Box(0, 255, (2, 2), np.uint8),
    spaces.Discrete(3),
    spaces.Discrete(4, start=-1),
    spaces.MultiDiscrete([2, 5]),
    spaces.MultiBinary(4),
    spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "flag": spaces.Discrete(2)}),
    spaces.Tuple([spaces.Discrete(2), spaces.Dict({"a": spaces.Box(0, 1, (1,))})]),
]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
def test_json_round_trip(space):
    back = space_from_json(space_to_json(space))
    assert same_space(space, back)


def test_flatten_batch_dict_and_tuple():
    sp = spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "flag": spaces.Discrete(2)})
    batch = {"pos": np.array([[0.1, 0.2], [0.3, 0.4]], np.float32), "flag": np.array([1, 0])}
    flat = flatten_batch(sp, batch)
    assert flat.dtype == np.float32 and flat.shape == (2, flat_dim(sp)) == (2, 3)
    # gymnasium sorts Dict keys: "flag" comes before "pos"
    np.testing.assert_allclose(flat, [[1.0, 0.1, 0.2], [0.0, 0.3, 0.4]], rtol=1e-6)
    tp = spaces.Tuple([spaces.Discrete(2), spaces.Box(0, 1, (2, 2))])
    assert flatten_batch(tp, (np.array([1]), np.ones((1, 2, 2)))).shape == (1, 5)


def test_mismatch_message_names_both_spaces():
    with pytest.raises(SpaceMismatchError, match=r"Box\(4,\).*Box\(3,\)"):
        check_same_spaces(what="the dataset", expected_obs=spaces.Box(-1, 1, (4,)), expected_act=spaces.Discrete(2),
                          actual_obs=spaces.Box(-1, 1, (3,)), actual_act=spaces.Discrete(2), against="env X")
    with pytest.raises(SpaceMismatchError, match="action space"):
        check_same_spaces(what="p", expected_obs=spaces.Discrete(2), expected_act=spaces.Discrete(2),
                          actual_obs=spaces.Discrete(2), actual_act=spaces.Discrete(3), against="q")


def test_bad_json_is_a_user_error():
    with pytest.raises(UserError):
        space_from_json("{not json")
    with pytest.raises(UserError):
        space_from_json('{"type": "Graph"}')
