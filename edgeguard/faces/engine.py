"""The per-face work shared by enrolment, `edgeguard analyze` and the live pipeline:
the detector, the encoder and the mask classifier configured once; finding faces
in still photos (masked ones too) and the one face of a watchlist photo.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from ..config import MaskConfig, RecognitionConfig
from ..detect import Box, Detection, detect_in_photo, open_detector, same_face
from ..mask import CANDIDATE_FLOOR, NOT_FACE, MaskClassifier, MaskModelError, mask_score, split_faces
from .encode import FaceEncoder
from .encoder_pool import EncoderPool
from .photos import PhotoError

log = logging.getLogger(__name__)

# YuNet runs permissively (edgeguard.detectors.yunet), so its less sure boxes get a
# second opinion: one scoring below SURE_SCORE (OpenCV's own default threshold
# for YuNet) is doubted when the mask model finds it not a face, and a doubted
# box is dropped unless dlib's HOG detector, run on the region around it, finds
# a face there too.  How sure the mask model must be differs: in a still photo
# (analyze, enrolment), whose faces go straight to a person, "more likely not a
# face than a face" (a dog's face, a poster); on live frames, where a dropped
# face is lost to tracking and counting while a false one still has to pass the
# size, sharpness and pose gates and a vote, 3:1 odds (as for a mask vote).  The
# mask model is not trusted further: it was trained on HOG's false candidates,
# and calls some real faces, most often dim and dark-skinned ones in video,
# more likely not a face than a face.  HOG's own boxes are not checked: its weak
# spot is misses, not false faces.  A doubted box the mask model calls a masked
# face (its mask score, P(mask | a face), at or above the classifier's own
# threshold) is doubted as on live frames, at 3:1 odds, in still photos too: a
# mask hides the nose, mouth and chin HOG looks for, and the model's "not a face"
# is high on masked faces, most of all small, blurred or turned ones; at 3:1 odds
# or more it is left to HOG as before (a wall scores 0.89, with a mask score of
# 0.63: a ratio of two small numbers).  Read off the training split of mask/real
# (bench/detector_accuracy.py --doubted), its 20 doubted boxes looked at one by
# one: the 3 showing no face (two hoods, a shirt's lettering) have mask scores of
# 0.26-0.34, as the dog (0.29) and the poster face of crowd/bald_guys.jpg (0.30);
# the 10 at 0.5 or more are faces, masked or blurred, but for 2 heads too small or
# dim to tell; 9 of them are below 3:1 odds (P(not a face) 0.56-0.74), and so kept.
SURE_SCORE = 0.9
TURNED_AWAY = "the face is turned away from the camera; a photo facing it, both eyes visible, is needed"
NOT_FACE_STILL = 0.5
NOT_FACE_LIVE = 0.75
# A face box at least this much inside the photo shows a whole face (YuNet also
# finds the halves of faces at a photo's edge, which HOG does not).
WHOLE_FACE = 0.9
# In a watchlist photo, a face at most this share of the largest face's size is a
# bystander: at least a third farther from the camera than the subject.  YuNet
# finds the people behind the subject of a news photo that HOG missed.
BYSTANDER = 0.75
CONFIRM_FACE = 90  # px: a doubted face is scaled to this for HOG (its window is 80 px)


class FaceEngine:
    """Detector and encoder configured once; models load on first use."""

    def __init__(
        self, cfg: RecognitionConfig, mask: MaskConfig | None = None, pool: EncoderPool | None = None
    ) -> None:
        self.cfg = cfg
        self.detector = open_detector(cfg.detector, cfg.detector_score)
        self.encoder = FaceEncoder(cfg.encoder, pool)
        self._hog = open_detector("hog")  # the last word on YuNet's doubted boxes (see checked)
        wants_masks = mask is not None and mask.enabled
        # The mask model also checks YuNet's unsure boxes (see checked), masks wanted or not.
        classifier = _mask_classifier() if wants_masks or cfg.detector == "yunet" else None
        self.masks = classifier if wants_masks else None
        self._face_check = classifier if cfg.detector == "yunet" else None
        search = mask.find_masked if self.masks is not None and cfg.detector == "hog" else "off"
        self.find_masked = search != "off"  # in still photos
        self.find_masked_live = search == "always"

    def warm_up(self) -> None:
        """Load the models and run each once now (a second or two) rather than on the first face, whose
        alert would wait for it; DetectorError if the detector cannot run, EncoderModelError if the
        encoder's model is damaged."""
        self.detector.load()
        self.encoder.load()
        blank = np.zeros((160, 160, 3), dtype=np.uint8)
        self.detector.find(blank if self.detector.colour else blank[:, :, 0])
        self.encoder.encode(blank, [Box(40, 120, 120, 40)])
        for classifier in {id(c): c for c in (self.masks, self._face_check) if c is not None}.values():
            classifier.probabilities(blank, [Box(40, 120, 120, 40)])
        if self._face_check is not None:  # HOG has the last word on doubted boxes
            self._hog.find(blank[:, :, 0])

    def checked(
        self, image: np.ndarray, found: list[Detection], rgb: bool, not_face: float = NOT_FACE_LIVE
    ) -> list[Detection]:
        """The detections that are faces: a YuNet box scoring below SURE_SCORE is dropped when the mask
        model finds it not a face with probability `not_face` or more (NOT_FACE_LIVE at least when it calls
        it a masked face) and HOG does not confirm it (without a mask model, all are kept); `image` is the
        one the boxes are in, RGB or BGR."""
        unsure = [d for d in found if d.score < SURE_SCORE]
        if self._face_check is None or not unsure:
            return found
        probs = self._face_check.probabilities(image, [d.box for d in unsure], rgb)
        masked = self._face_check.threshold
        doubted = [d for d, p in zip(unsure, probs) if p[NOT_FACE] >= _doubt_from(p, not_face, masked)]
        rejected = {id(d) for d in doubted if not self._hog_confirms(image, d.box)}
        return [d for d in found if id(d) not in rejected]

    def _beyond_doubt(self, rgb: np.ndarray, found: Detection) -> bool:
        """Whether a face is sure enough for the watchlist, whose photos set the reference for every match:
        YuNet sure of it (SURE_SCORE), the mask model sure (3:1) that it is a face, or HOG finding it too.
        An animal's face the ordinary check lets through (the mask model finds a dog's 50:50) is not."""
        if self.detector.name != "yunet" or found.score >= SURE_SCORE:
            return True
        sure_face = (
            self._face_check is not None
            and self._face_check.probabilities(rgb, [found.box])[0][NOT_FACE] <= 1 - NOT_FACE_LIVE
        )
        return sure_face or self._hog_confirms(rgb, found.box)

    def _hog_confirms(self, image: np.ndarray, box: Box) -> bool:
        """Whether HOG finds the face `box` frames, in the region around it scaled to CONFIRM_FACE px."""
        height, width = image.shape[:2]
        region = box.grown(box.size // 2).clipped(height, width)
        if region.size < 1:
            return False
        scale = CONFIRM_FACE / max(box.size, 1)
        patch = cv2.resize(
            region.crop(image),
            None,
            fx=scale,
            fy=scale,
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        return any(
            same_face(d.box.scaled(1 / scale).shifted(region.top, region.left), box)
            for d in self._hog.find(patch, 0)
        )

    def find_in_photo(self, rgb: np.ndarray, masked: bool = False) -> list[Detection]:
        """Faces in a still photo; with `masked` (and HOG's search enabled), also masked faces
        HOG scored just below its cut-off.  Enrolment never uses it: a watchlist photo is bare-faced."""
        search = self.masks if masked and self.find_masked else None
        found = detect_in_photo(
            self.detector,
            rgb,
            self.cfg.upsample,
            self.cfg.max_detect_side,
            CANDIDATE_FLOOR if search else 0.0,
        )
        if search is None:
            return self.checked(rgb, found, rgb=True, not_face=NOT_FACE_STILL)
        faces, masked_faces = split_faces(rgb, [(d.box, d.score) for d in found], search)
        return [Detection(box, 0.0) for box in faces] + [Detection(box, score) for box, score in masked_faces]

    def enrolment_encoding(self, rgb: np.ndarray) -> np.ndarray:
        """The encoding of the one person in a watchlist photo, or PhotoError.

        Faces below enrol_min_face_size or at most BYSTANDER times the largest one's
        size (people in the background) are ignored, and so are faces cut off by
        the photo's edge when a whole one is there; more than one usable face is
        refused, since we could not tell who is meant, and so is a face turned too
        far from the camera to be compared with anyone.
        """
        candidates = self.find_in_photo(rgb)
        found = [d for d in candidates if self._beyond_doubt(rgb, d)]
        if not found and any(not d.frontal for d in candidates):
            raise PhotoError(TURNED_AWAY)
        if not found:
            raise PhotoError("no face found (a frontal face with both eyes visible is needed)")
        usable = [d for d in found if d.box.size >= self.cfg.enrol_min_face_size]
        whole = [d for d in usable if _share_inside(d.box, rgb) >= WHOLE_FACE]
        if whole:  # someone cut off by the photo's edge beside a whole face is not who is meant
            usable = whole
        if usable:  # nor is a bystander, farther from the camera than the subject
            largest = max(d.box.size for d in usable)
            usable = [d for d in usable if d.box.size > BYSTANDER * largest]
        if not usable:
            largest = max(d.box.size for d in found)
            raise PhotoError(
                f"face too small: {largest} px, at least {self.cfg.enrol_min_face_size} px needed"
            )
        if len(usable) > 1:
            raise PhotoError(f"{len(usable)} faces found; a watchlist photo must show one person only")
        if not usable[0].frontal:
            raise PhotoError(TURNED_AWAY)
        return self.encoder.encode(rgb, [usable[0].box], self.cfg.enrol_jitters)[0]


def _doubt_from(probs: np.ndarray, not_face: float, masked: float) -> float:
    """How sure the mask model must be that a box is no face for it to be doubted: `not_face`, or live
    frames' 3:1 odds when its mask score is `masked` or more (see SURE_SCORE)."""
    return max(not_face, NOT_FACE_LIVE) if mask_score(probs) >= masked else not_face


def _share_inside(box: Box, image: np.ndarray) -> float:
    """The share of the box's area that lies inside the image."""
    return box.clipped(*image.shape[:2]).area / max(box.area, 1)


def _mask_classifier() -> MaskClassifier | None:
    """The mask model, loaded; without a usable one, faces are still recognised and mask checks are off."""
    classifier = MaskClassifier()
    try:
        classifier.load()
    except MaskModelError as exc:
        log.error(
            "%s; running without mask checks (and without a second opinion on the detector's unsure faces)",
            exc,
        )
        return None
    return classifier
