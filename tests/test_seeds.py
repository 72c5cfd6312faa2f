"""The seed table: distinct streams, except the ones shared on purpose."""

import pytest

from sgdconv.seeds import SEED_OFFSETS, SHARED, seed_for


def test_streams_are_distinct_except_the_shared_ones():
    by_offset: dict[int, list[str]] = {}
    for name, offset in SEED_OFFSETS.items():
        by_offset.setdefault(offset, []).append(name)
    clashes = {tuple(sorted(names)) for names in by_offset.values() if len(names) > 1}
    assert clashes == {tuple(sorted(pair)) for pair in SHARED}


def test_sub_streams_stay_below_the_next_offset():
    # anlu_noise runs use extra = 0..3 on top of their offset
    offsets = sorted(set(SEED_OFFSETS.values()))
    for name in ("anlu_noise_interpolating", "anlu_noise_non_interpolating"):
        start = SEED_OFFSETS[name]
        following = [o for o in offsets if o > start]
        assert not following or start + 3 < following[0]


def test_seed_for_adds_the_config_seed_and_names_unknown_streams():
    assert seed_for({"seed": 7}, "chatterjee_thm41") == 4107
    assert seed_for({"seed": 7}, "anlu_noise_interpolating", 2) == 5209
    with pytest.raises(KeyError, match="SEED_OFFSETS"):
        seed_for({"seed": 0}, "nope")
