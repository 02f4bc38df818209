"""Finding faces: OpenCV's YuNet (the default), or dlib's HOG (CPU) or CNN (CUDA), behind one interface."""
