"""Typed settings: a config mapping becomes a frozen dataclass once, with unknown and missing
keys rejected by name and every value converted to its field's type."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest
from test_chatterjee_thm41 import THM41
from test_chatterjee_thm45 import SETTINGS as THM45

from sgdconv.chatterjee.settings import Thm41Settings, Thm45Settings, from_mapping
from sgdconv.lojasiewicz.effort import SearchEffort


def test_values_are_converted_once():
    settings = Thm41Settings.from_dict({**THM41, "n": 4.0, "a_start": 1, "depths": [2, 3.0]})
    assert settings.n == 4 and isinstance(settings.n, int)
    assert settings.a_start == 1.0 and isinstance(settings.a_start, float)
    assert settings.depths == (2, 3) and settings.middle_range == (0.5, 1.0)
    assert settings.search == SearchEffort(32, 4, 30)
    assert settings.configurations()[0] == (2, 4, "tanh")
    with pytest.raises(FrozenInstanceError):
        settings.n = 5  # type: ignore[misc]
    # An instance passes through unchanged.
    assert Thm41Settings.from_dict(settings) is settings


def test_unknown_missing_and_mistyped_keys_are_named():
    with pytest.raises(ValueError, match=r"chatterjee.thm41: unknown keys \['widht'\]"):
        Thm41Settings.from_dict({**THM41, "widht": [4]})
    partial = {k: v for k, v in THM41.items() if k != "tol"}
    with pytest.raises(ValueError, match=r"missing keys \['tol'\]"):
        Thm41Settings.from_dict(partial)
    with pytest.raises(ValueError, match=r"chatterjee.thm41.n: expected an integer"):
        Thm41Settings.from_dict({**THM41, "n": 4.5})
    with pytest.raises(TypeError, match=r"chatterjee.thm41.search.n_steps: expected a number"):
        Thm41Settings.from_dict({**THM41, "search": {**THM41["search"], "n_steps": "30"}})
    with pytest.raises(ValueError, match=r"middle_range: expected 2 values"):
        Thm41Settings.from_dict({**THM41, "middle_range": [0.5]})
    with pytest.raises(ValueError, match="d >= n"):
        Thm41Settings.from_dict({**THM41, "d": 2})


def test_thm45_settings():
    settings = Thm45Settings.from_dict({**THM45, "d_over_n": 2})
    assert settings.d_over_n == (2.0,)  # one ratio may be given as a number
    assert settings.input_dimension(32, 1.0) == 32 and settings.input_dimension(3, 0.5) == 2
    with pytest.raises(ValueError, match="datasets must divide seeds"):
        Thm45Settings.from_dict({**THM45, "datasets": 4})
    with pytest.raises(TypeError, match="expected true or false"):
        from_mapping(_Flag, {"on": 1})


@dataclass(frozen=True)
class _Flag:
    on: bool
