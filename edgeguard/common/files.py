"""Files that hold personal or biometric data: written privately (0600 in 0700 folders) and atomically."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO


class UnsafeFile(OSError):
    """A symbolic link, or something other than a regular file, where a plain file must be."""


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading if it is a regular file; UnsafeFile for a symlink, folder, device or pipe.

    The link is refused when the file is opened (O_NOFOLLOW), not by looking
    first, so there is no window between check and use; O_NONBLOCK keeps a
    FIFO planted in a folder from blocking the open.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(errno.ELOOP, "a symbolic link, not followed: put the file itself here") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFile(errno.EINVAL, "not a regular file (a folder, a device or a pipe?)")
    return os.fdopen(fd, "rb")


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file, never through a symlink (see `open_regular`)."""
    with open_regular(path) as fh:
        return fh.read()


def private_folder(folder: Path) -> None:
    """Make `folder` (and its parents) and keep it 0700, also when it was made by someone else."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` as a 0600 file, atomically: readers see the old file or the whole new one.

    The data goes to a temporary file beside it (mkstemp makes it 0600, whatever
    the umask), which then replaces `path` in one rename.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_private(path: Path, data: bytes) -> bool:
    """Create `path` as a 0600 file holding `data`, flushed to the disk; False if it exists already.

    For secrets made once: when two processes race, the second one keeps the first one's file.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        path.unlink(missing_ok=True)  # never leave a secret half made (a full disk): it is made again later
        raise
    return True
