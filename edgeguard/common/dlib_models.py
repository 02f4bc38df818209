"""Where dlib's model files are: the face_recognition_models package ships them."""

from __future__ import annotations

import warnings


def model_path(name: str) -> str:
    """Path of a model file: 'cnn_detector', 'landmarks_5' or 'encoder'."""
    with warnings.catch_warnings():
        # face_recognition_models uses pkg_resources, which warns on import.
        warnings.simplefilter("ignore", UserWarning)
        import face_recognition_models as models
    return {
        "cnn_detector": models.cnn_face_detector_model_location,
        "landmarks_5": models.pose_predictor_five_point_model_location,
        "encoder": models.face_recognition_model_location,
    }[name]()
