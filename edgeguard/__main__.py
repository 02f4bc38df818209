"""`python -m edgeguard`: the `edgeguard` command."""

from .cli import main

if (
    __name__ == "__main__"
):  # run, not imported: spawned processes (faces/encoder_pool.py) re-import a main module
    raise SystemExit(main())
