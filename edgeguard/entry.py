"""The `edgeguard` console script's entry point, importing the command only when it runs.

The encoder's worker processes are spawned (edgeguard.faces.encoder_pool),
and a spawned process first runs the parent's main script again as a module:
with the console script pointing here, that costs one small import instead of
the whole command line (OpenCV, Flask, ...), about 28 MB per worker.
"""

from __future__ import annotations


def main() -> int:
    from .cli import main as run_command

    return run_command()
