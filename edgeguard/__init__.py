"""EdgeGuard: an on-camera face alert daemon."""

__version__ = "0.1.0"
