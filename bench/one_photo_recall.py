"""Benchmark: people enrolled from one photo, named from several samples, before and after pooling.

lfw10 has 10 people x 10 photos.  Each split enrols 5 of the people from one
photo each (Watchlist built from their encodings, tolerance 0.56) and keeps the
other 5 as strangers.  A "track" stands for a face followed over several
frames: k photos of one person, each an identity sample, given to a real
edgeguard.live.track.Track in turn:

- before: the identity vote alone (Track.add_sample: a majority of
  `vote_frames` ballots, samples within tolerance + unknown_margin abstain);
- after: the same vote plus pooling (edgeguard.live.pipeline.add_identity_sample:
  the mean of the open vote's samples, held to tolerance - margin / sqrt(k)).

A track of an enrolled person is named correctly, named wrongly or not named;
a stranger's track is rejected or falsely named.  Different photos of a person
vary far more than consecutive video frames, so this is a hard test of both.
For comparison, single photos: the tolerance alone, and the plain approach
(face_recognition's 0.6).  Encodings from both detectors (hog and yunet boxes).

Enrolment augmentation: the watchlist photo encoded as the mean of its own and
its mirror image's encodings ("mirror"), or of JITTERS jittered copies (dlib's
recipe, `enrol_jitters`), the other photos encoded plainly; single photos and
tracks of 3 samples (vote + pooling) at the tolerance and just below it, so
that recall is compared where no stranger is named.  Measured (200 splits,
yunet, opencv encoder): plain enrolment at 0.56 names 96.1% of single photos
and 98.7% of tracks, no stranger; mirror and jitters bring every face nearer,
strangers too, as a higher tolerance would: at 0.56 they name strangers
(99.95% and 99.86% of single photos rejected), and where they name none
(mirror at 0.55: 96.2% and 98.7%) they name no more than plain enrolment.
So enrolment stays one plain encoding per photo.

Run: python bench/one_photo_recall.py [SPLITS]   (default 200 random splits, seeded)
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np

from edgeguard.common.match_rule import MatchThresholds
from edgeguard.config import MaskConfig, PipelineConfig, RecognitionConfig
from edgeguard.detect import Box
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.photos import load_photo
from edgeguard.live.pipeline import add_identity_sample, sample_label
from edgeguard.live.track import Sample, Track
from edgeguard.watchlist.build import Watchlist
from edgeguard.watchlist.details import Person

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
TRACKS_PER_PERSON = 3
PLAIN_TOLERANCE = 0.6
JITTERS = 10
ENROLMENTS = ("plain", "mirror", f"jitters {JITTERS}")


def main(splits: int) -> int:
    tolerance, margin = RecognitionConfig().tolerance, PipelineConfig().unknown_margin
    print(
        f"lfw10, {splits} splits: 5 people enrolled from 1 photo each, 5 strangers; "
        f"tolerance {tolerance}, unknown_margin {margin}"
    )
    for detector in ("hog", "yunet"):
        enrolments = encode_all(detector)
        encodings = enrolments["plain"]
        print(f"--- detector = {detector}: {sum(len(v) for v in encodings.values())} photos encoded")
        print("  single photos: " + single_photos(encodings, splits, tolerance))
        print("  single photos, plain approach (0.6): " + single_photos(encodings, splits, PLAIN_TOLERANCE))
        for k in (2, 3, 5):
            for pooling in (False, True):
                label = "after (vote + pooling)" if pooling else "before (vote alone)  "
                print(f"  tracks of {k} samples, {label}: {tracks(encodings, splits, k, pooling, tolerance)}")
        print("  enrolment augmentation (the watchlist photo's encoding):")
        for enrolment in ENROLMENTS:
            for tol in (tolerance, tolerance - 0.01, tolerance - 0.02):
                enrolled = enrolments[enrolment]
                print(
                    f"    {enrolment}, tolerance {tol:.2f}: single photos "
                    f"{single_photos(encodings, splits, tol, enrolled)}; tracks of 3, vote + pooling "
                    f"{tracks(encodings, splits, 3, True, tol, enrolled)}"
                )
    return 0


def encode_all(detector: str) -> dict[str, dict[str, list[np.ndarray]]]:
    """Each lfw10 person's photos' encodings, by kind of enrolment (ENROLMENTS): the face nearest the
    centre of each photo."""
    engine = FaceEngine(RecognitionConfig(detector=detector), MaskConfig())
    out: dict[str, dict[str, list[np.ndarray]]] = {enrolment: {} for enrolment in ENROLMENTS}
    for folder in sorted(p for p in (TESTDATA / "lfw10").iterdir() if p.is_dir()):
        for photo in sorted(folder.glob("*.jpg")):
            rgb = load_photo(photo, 40_000_000)
            height, width = rgb.shape[:2]
            found = engine.find_in_photo(rgb)
            if found:
                box = min(
                    found,
                    key=lambda d: (d.box.center[0] - width / 2) ** 2 + (d.box.center[1] - height / 2) ** 2,
                ).box
                plain = engine.encoder.encode(rgb, [box])[0]
                mirrored = Box(box.top, width - 1 - box.left, box.bottom, width - 1 - box.right)
                mirror = engine.encoder.encode(np.ascontiguousarray(rgb[:, ::-1]), [mirrored])[0]
                kinds = (plain, (plain + mirror) / 2, engine.encoder.encode(rgb, [box], JITTERS)[0])
                for enrolment, encoding in zip(ENROLMENTS, kinds, strict=True):
                    out[enrolment].setdefault(folder.name, []).append(encoding)
    return out


def split(
    encodings: dict[str, list[np.ndarray]],
    rng: random.Random,
    tolerance: float,
    enrolments: dict[str, list[np.ndarray]] | None = None,
):
    """A watchlist of 5 people from one photo each (its encoding from `enrolments`, default `encodings`);
    the photos not enrolled, and the strangers."""
    names = sorted(encodings)
    enrolled = rng.sample(names, 5)
    chosen = {name: rng.randrange(len(encodings[name])) for name in enrolled}
    people = {str(i): Person(str(i), name) for i, name in enumerate(enrolled, start=1)}
    source = enrolments or encodings
    watchlist = Watchlist(
        people,
        {str(i): [source[name][chosen[name]]] for i, name in enumerate(enrolled, start=1)},
        [],
        MatchThresholds(tolerance, PipelineConfig().unknown_margin),
    )
    rest = {
        str(i): [e for j, e in enumerate(encodings[name]) if j != chosen[name]]
        for i, name in enumerate(enrolled, start=1)
    }
    strangers = [encodings[name] for name in names if name not in enrolled]
    return watchlist, rest, strangers


def single_photos(
    encodings: dict[str, list[np.ndarray]],
    splits: int,
    tolerance: float,
    enrolments: dict[str, list[np.ndarray]] | None = None,
) -> str:
    rng = random.Random(1)
    named = wrong = known = rejected = stranger = 0
    for _ in range(splits):
        watchlist, rest, strangers = split(encodings, rng, tolerance, enrolments)
        for pid, samples in rest.items():
            for identity in watchlist.identify(np.array(samples)):
                known += 1
                named += identity.person is not None and identity.person.id == pid
                wrong += identity.person is not None and identity.person.id != pid
        for samples in strangers:
            for identity in watchlist.identify(np.array(samples)):
                stranger += 1
                rejected += identity.person is None
    return figures(named, wrong, known, rejected, stranger)


def tracks(
    encodings: dict[str, list[np.ndarray]],
    splits: int,
    k: int,
    pooling: bool,
    tolerance: float,
    enrolments: dict[str, list[np.ndarray]] | None = None,
) -> str:
    rng = random.Random(2)
    named = wrong = known = rejected = stranger = 0
    for _ in range(splits):
        watchlist, rest, strangers = split(encodings, rng, tolerance, enrolments)
        for pid, samples in rest.items():
            for _ in range(TRACKS_PER_PERSON):
                outcome = decide(rng.sample(samples, k), watchlist, pooling)
                known += 1
                named += outcome == pid
                wrong += isinstance(outcome, str) and outcome != pid
        for samples in strangers:
            for _ in range(TRACKS_PER_PERSON):
                outcome = decide(rng.sample(samples, k), watchlist, pooling)
                stranger += 1
                rejected += not isinstance(outcome, str)
    return figures(named, wrong, known, rejected, stranger)


def decide(samples: list[np.ndarray], watchlist: Watchlist, pooling: bool):
    """What a track's vote says after these samples: a person's Id, Verdict.UNKNOWN, or None (still open)."""
    track = Track(1, None, 0.0, PipelineConfig().vote_frames)  # type: ignore[arg-type]  # no box needed here
    for now, (encoding, identity) in enumerate(
        zip(samples, watchlist.identify(np.array(samples)), strict=True)
    ):
        sample = Sample(sample_label(identity), identity.distance, encoding)
        decided = (
            add_identity_sample(track, sample, watchlist, now) if pooling else track.add_sample(sample, now)
        )
        if decided:
            break
    return track.decided


def figures(named: int, wrong: int, known: int, rejected: int, stranger: int) -> str:
    return (
        f"enrolled named {100 * named / known:5.1f}%, "
        f"wrongly named {100 * wrong / known:4.2f}% (of {known}); "
        f"strangers rejected {100 * rejected / stranger:6.2f}% (of {stranger})"
    )


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
