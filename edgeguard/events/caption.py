"""The caption on the face crop of a watchlist person's sighting: it says the picture is the camera's."""

from __future__ import annotations

import cv2
import numpy as np

CAPTION_WIDTH = 240  # a captioned face is scaled to at least this width, so that its caption can be read
CAPTION_HEIGHT = 44


def captioned(face: np.ndarray, where_and_when: str) -> np.ndarray:
    """A face crop with a caption bar under it: "CAMERA PICTURE" and where and when it was taken.

    For the sighting of a watchlist person: whoever opens the link must see at
    once that this is what the camera saw, not the photo the person was enrolled with.
    """
    height, width = face.shape[:2]
    scale = max(1.0, CAPTION_WIDTH / max(width, 1))
    image = (
        cv2.resize(face, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)
        if scale > 1
        else face
    )
    bar = np.zeros((CAPTION_HEIGHT, image.shape[1], 3), np.uint8)
    text = where_and_when.encode("ascii", "replace").decode()
    for line, y in (("CAMERA PICTURE", 18), (text, 38)):
        cv2.putText(bar, line, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([image, bar])
