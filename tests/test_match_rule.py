"""Tests for edgeguard.common.match_rule: match / uncertain / unknown at the band edges, the margin, pooling's
limit and the match words; and that every stage reads the one thresholds object of a configuration."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from edgeguard.common.match_rule import MatchDecision, MatchThresholds
from edgeguard.config import Config, PipelineConfig, RecognitionConfig, load_config
from edgeguard.events.visitors import UnknownVisitors
from edgeguard.live.pipeline import sample_label
from edgeguard.live.vote import Verdict
from edgeguard.watchlist.build import Watchlist
from edgeguard.watchlist.details import Person

DEFAULT = MatchThresholds(tolerance=0.56, unknown_margin=0.08)


def test_the_defaults_are_the_configs():
    config = Config()
    assert config.match_thresholds == MatchThresholds()
    assert MatchThresholds().tolerance == RecognitionConfig().tolerance
    assert MatchThresholds().unknown_margin == PipelineConfig().unknown_margin


@pytest.mark.parametrize(
    "distance,decision",
    [
        (0.0, MatchDecision.MATCH),
        (0.56, MatchDecision.MATCH),  # the tolerance itself still matches
        (0.5600001, MatchDecision.UNCERTAIN),
        (0.6, MatchDecision.UNCERTAIN),
        (0.56 + 0.08, MatchDecision.UNCERTAIN),  # the band's far edge is still uncertain
        (0.6400001, MatchDecision.UNKNOWN),
        (1.2, MatchDecision.UNKNOWN),
        (None, MatchDecision.UNKNOWN),  # nobody to compare with
        (math.nan, MatchDecision.UNKNOWN),
    ],
)
def test_decide_at_the_band_edges(distance, decision):
    assert DEFAULT.decide(distance) is decision


def test_the_margin_sets_the_width_of_the_uncertain_band():
    assert MatchThresholds(0.56, 0.0).decide(0.5601) is MatchDecision.UNKNOWN  # no band: beyond is unknown
    assert MatchThresholds(0.56, 0.2).decide(0.75) is MatchDecision.UNCERTAIN
    assert MatchThresholds(0.4, 0.08).decide(0.5) is MatchDecision.UNKNOWN
    assert MatchThresholds(0.4, 0.08).decide(0.4) is MatchDecision.MATCH


def test_pooled_limit_narrows_with_the_square_root_of_the_samples():
    assert DEFAULT.pooled_limit(1) == pytest.approx(0.48)
    assert DEFAULT.pooled_limit(2) == pytest.approx(0.56 - 0.08 / math.sqrt(2))
    assert DEFAULT.pooled_limit(4) == pytest.approx(0.52)


@pytest.mark.parametrize(
    "distance,others,words",
    [
        (0.40, False, "strong"),
        (0.48, False, "strong"),  # the uncertain band mirrored inside the tolerance
        (0.4800001, False, "possible"),
        (0.555, False, "possible"),
        (None, False, "possible"),
        (0.40, True, "possible"),  # someone else was named on the way
    ],
)
def test_words(distance, others, words):
    assert DEFAULT.words(distance, others) == words


def test_thresholds_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.tolerance = 0.7  # type: ignore[misc]


def test_a_config_has_one_thresholds_object_from_its_recognition_and_pipeline_sections(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[paths]\nbase_dir = "{tmp_path}"\n'
        "[recognition]\ntolerance = 0.5\n[pipeline]\nunknown_margin = 0.1\n"
    )
    config = load_config(path)
    assert config.match_thresholds == MatchThresholds(0.5, 0.1)
    assert config.match_thresholds is config.match_thresholds  # the same object for every reader


def one_person_watchlist(thresholds: MatchThresholds, negatives: dict | None = None) -> Watchlist:
    photo = np.zeros(128, dtype=np.float32)
    return Watchlist({"1": Person("1", "Ana")}, {"1": [photo]}, [], thresholds, negatives)


def at(distance: float, axis: int = 0) -> np.ndarray:
    encoding = np.zeros(128, dtype=np.float32)
    encoding[axis] = distance
    return encoding


def test_the_watchlist_names_a_match_and_says_uncertain_or_unknown_otherwise():
    watchlist = one_person_watchlist(DEFAULT)
    match, uncertain, unknown = watchlist.identify(np.array([at(0.5), at(0.6), at(0.7)]))
    assert match.person is not None and match.match is MatchDecision.MATCH
    assert uncertain.person is None and uncertain.match is MatchDecision.UNCERTAIN
    assert unknown.person is None and unknown.match is MatchDecision.UNKNOWN
    assert [sample_label(i) for i in (match, uncertain, unknown)] == ["1", Verdict.ABSTAIN, Verdict.UNKNOWN]
    # a stricter tolerance in the thresholds changes the watchlist's decision, nothing else needed
    [stricter] = one_person_watchlist(MatchThresholds(0.4, 0.08)).identify(at(0.5)[None])
    assert stricter.person is None and stricter.match is MatchDecision.UNKNOWN


def test_a_match_vetoed_by_feedback_is_uncertain_and_abstains():
    watchlist = one_person_watchlist(DEFAULT, {"1": at(0.3, axis=1)[None]})
    [vetoed] = watchlist.identify(at(0.3, axis=1)[None] + at(0.01)[None])
    assert vetoed.person is None and vetoed.vetoed is not None
    assert vetoed.match is MatchDecision.UNCERTAIN and sample_label(vetoed) is Verdict.ABSTAIN


def test_an_empty_watchlist_knows_nobody():
    empty = Watchlist({}, {}, [], DEFAULT)
    [identity] = empty.identify(at(0.1)[None])
    assert identity.person is None and identity.distance is None and identity.match is MatchDecision.UNKNOWN
    assert sample_label(identity) is Verdict.UNKNOWN


def test_a_returning_visitor_is_one_whose_encodings_match():
    visitors = UnknownVisitors(window=600, thresholds=DEFAULT)
    first = visitors.remember(at(0.0)[None], now=0.0)
    assert visitors.recall(at(0.55)[None], now=1.0) is first  # within the tolerance: the same visitor
    assert visitors.recall(at(0.6, axis=1)[None], now=2.0) is None  # uncertain is not the same visitor
    stricter = UnknownVisitors(window=600, thresholds=MatchThresholds(0.3, 0.08))
    stricter.remember(at(0.0)[None], now=0.0)
    assert stricter.recall(at(0.4)[None], now=1.0) is None
