"""The one rule that decides whether a face is a watchlist person: match, uncertain or unknown.

Face distances are Euclidean distances between dlib's 128-d encodings.  dlib's
network was trained so that two photos of the same person lie below about
0.56 and two different people above about 0.64; between the two is where the
network itself cannot tell.  From that:

- `tolerance` (default 0.56, `[recognition] tolerance`): a face at most this
  far from a person's photo is a MATCH (unless feedback vetoed that person,
  edgeguard.watchlist.build).
- `unknown_margin` (default 0.08, `[pipeline] unknown_margin`): only a face
  more than this beyond the tolerance (0.64 by default) is UNKNOWN; closer it
  is UNCERTAIN, and an uncertain identity sample abstains from the vote
  (edgeguard.live.vote), so that a known face seen at a poor angle is not
  called unknown.
- The same band mirrored inside the tolerance (0.48 by default) is where a
  match is "strong" in an alert's words (judged on the median of the samples
  that named the person, edgeguard.events.recorder.match_words); a match
  between 0.48 and 0.56, or one whose vote also had samples naming someone
  else, is "possible".
- Pooling an open vote's samples (edgeguard.live.pipeline.pooled_identity):
  the mean of k encodings is less noisy than each, so it must clear the
  tolerance by `unknown_margin / sqrt(k)`.
- A returning unknown visitor (edgeguard.events.visitors) is the same visitor
  when their encodings are a MATCH for the remembered ones.

`Config.match_thresholds` builds the one `MatchThresholds` of a configuration;
the watchlist, the pipeline, the events recorder and the visitors all read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class MatchDecision(StrEnum):
    MATCH = "match"  # within the tolerance
    UNCERTAIN = "uncertain"  # beyond the tolerance by at most the margin (or a match vetoed by feedback)
    UNKNOWN = "unknown"  # farther, or nobody to compare with


@dataclass(frozen=True)
class MatchThresholds:
    tolerance: float = 0.56
    unknown_margin: float = 0.08

    def decide(self, distance: float | None) -> MatchDecision:
        """Match, uncertain or unknown for the distance to the nearest person (None: nobody to compare)."""
        if distance is None:
            return MatchDecision.UNKNOWN
        if distance <= self.tolerance:
            return MatchDecision.MATCH
        if distance <= self.tolerance + self.unknown_margin:
            return MatchDecision.UNCERTAIN
        return MatchDecision.UNKNOWN

    def pooled_limit(self, samples: int) -> float:
        """The largest distance at which the mean of `samples` encodings still names a person."""
        return self.tolerance - self.unknown_margin / math.sqrt(samples)

    def words(self, distance: float | None, others_named: bool) -> str:
        """How close a match is, for the people who act on it: "strong" when the distance is at least the
        margin inside the tolerance and no sample of the vote named anyone else, "possible" otherwise."""
        strong = (
            distance is not None and distance <= self.tolerance - self.unknown_margin and not others_named
        )
        return "strong" if strong else "possible"
