"""Every random stream of the workflow, in one table.

A stream's seed is the config's ``seed`` plus a fixed offset, so that streams are distinct and a
change of ``seed`` moves all of them together. A new experiment adds its streams here (with
offsets that no other stream uses) and the rule files ask for them by name: no offset is written
anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SEED_OFFSETS: dict[str, int] = {
    # zhang: the digits data set and the vision runs (training and statistics samples)
    "zhang_digits": 90,
    "zhang_nonint": 100,
    "zhang_nonint_stats": 101,
    "zhang_interp": 200,
    "zhang_interp_stats": 201,
    # zhang: the language track (Transformer-XL): training, statistics sample, offline corpus
    "zhang_lm": 300,
    "zhang_lm_stats": 301,
    "zhang_lm_corpus": 302,
    # chatterjee: the deep-network experiments of Section 4
    "chatterjee_thm41": 4100,
    "chatterjee_thm45": 4145,
    # anlu: data, the constants' searches and the SGD noise of each Monte-Carlo experiment;
    # thm41 and lem42 share the data and constants' streams (the same problem, so the same α̂,
    # Ĉ_L and schedules when their settings agree) and differ in the noise stream.
    "anlu_thm31_data": 5100,
    "anlu_thm31_constants": 5101,
    "anlu_thm31_noise": 5102,
    "anlu_thm41_data": 5110,
    "anlu_thm41_constants": 5111,
    "anlu_thm41_noise": 5112,
    "anlu_lem42_data": 5110,
    "anlu_lem42_constants": 5111,
    "anlu_lem42_noise": 5122,
    # anlu_noise: model init, data, training order and statistics sample of each run
    "anlu_noise_interpolating": 5200,
    "anlu_noise_non_interpolating": 5210,
}

#: Streams that deliberately share an offset (the same problem drawn twice).
SHARED = {("anlu_thm41_data", "anlu_lem42_data"), ("anlu_thm41_constants", "anlu_lem42_constants")}


def seed_for(config: Mapping[str, Any], stream: str, extra: int = 0) -> int:
    """The seed of ``stream``: ``config["seed"] + SEED_OFFSETS[stream] + extra``.

    ``extra`` numbers the sub-streams of one experiment (e.g. an anlu_noise run's model, data,
    order and sample, 0..3), which stay below the next experiment's offset.
    """
    try:
        offset = SEED_OFFSETS[stream]
    except KeyError:
        raise KeyError(f"no seed stream {stream!r}; add it to sgdconv.seeds.SEED_OFFSETS") from None
    return int(config["seed"]) + offset + int(extra)
