"""Finding masked faces that dlib's HOG detector misses.

dlib's HOG detector scores a face by its whole outline; a mask hides
the mouth and nose, so masked faces often score just below the detector's
cut-off of 0 (about half of the masked portraits in the test data at upsample
1).  Lowering the cut-off to CANDIDATE_FLOOR recovers most of them, together
with many patches of clothing, hair and background (a few per photo), so every
such candidate must pass a verifier: the mask classifier (.classifier) has a third
class, "not a face", trained on exactly those false candidates.  A candidate is
kept when the classifier says it is a face and that the face wears a mask: the
bare faces HOG missed are left missed, since a weak HOG score without the mask
to explain it is more often a false face than a true one.  The candidates come
from the same HOG pass that finds the ordinary faces (DlibDetector.find with
floor CANDIDATE_FLOOR), so the search costs one forward pass of a small network
for all the candidates of a frame, not a second detector.
"""

from __future__ import annotations

import logging

import numpy as np

from ..detect import Box, same_face
from .classifier import NOT_FACE, MaskClassifier, mask_score

log = logging.getLogger("edgeguard.mask")  # the stage's logger, as before the split

# HOG scores at or above this (and below 0) make a candidate for a masked face.
# Chosen on the training split: the floor that yields a candidate for 95% of
# its masked portraits (train/MODEL_CARD.md).
CANDIDATE_FLOOR = -1.0
# A candidate is a face when P(not a face) is below this: the largest cut-off
# letting at most 0.5% of the validation split's false candidates through as
# masked faces (train_mask.face_threshold); a frame has 10-20 candidates.
FACE_THRESHOLD = 0.1


def split_faces(
    image: np.ndarray, scored: list[tuple[Box, float]], classifier: MaskClassifier, rgb: bool = True
) -> tuple[list[Box], list[tuple[Box, float]]]:
    """HOG's faces among `scored` (score 0 or more), and the masked faces among the rest with their
    mask scores."""
    faces = [box for box, score in scored if score >= 0]
    return faces, find_masked_faces(image, faces, classifier, scored, rgb)


def find_masked_faces(
    image: np.ndarray,
    hog_boxes: list[Box],
    classifier: MaskClassifier,
    candidates: list[tuple[Box, float]],
    rgb: bool = True,
) -> list[tuple[Box, float]]:
    """The masked faces among HOG's sub-threshold `candidates`, none of them one of `hog_boxes`, with
    their mask scores.

    `candidates` are (box, score) pairs in `image`'s coordinates (an RGB image,
    or BGR with `rgb` false), as
    DlibDetector.find or detect_in_photo return them (as (box, score) pairs) with floor
    CANDIDATE_FLOOR (those scoring 0 or more are ignored here: they are the
    detector's faces, `hog_boxes`).  A candidate is kept if the network calls
    it a face (P(not a face) < FACE_THRESHOLD) with a mask (mask score at or
    above the classifier's threshold) and no HOG box or better-scoring kept
    candidate frames the same face.  One forward pass for all the candidates; the
    mask score that verified a face is returned with it, so that the same frame
    need not classify it again.
    """
    fresh = [
        (box, score)
        for box, score in candidates
        if score < 0 and box.size > 0 and not any(same_face(box, other) for other in hog_boxes)
    ]
    if not fresh:
        return []
    probs = classifier.probabilities(image, [box for box, _ in fresh], rgb)
    faces: list[tuple[Box, float]] = []
    for (box, _), p in sorted(zip(fresh, probs), key=lambda pair: -pair[0][1]):
        score = mask_score(p)
        verified = p[NOT_FACE] < FACE_THRESHOLD and score >= classifier.threshold
        if verified and not any(same_face(box, other) for other, _ in faces):
            faces.append((box, round(score, 4)))
    log.debug("masked faces: %d of %d candidates", len(faces), len(fresh))
    return faces
