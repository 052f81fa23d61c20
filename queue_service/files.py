"""Files and folders only the service's user can open: mail, SMS, secrets, Redis data.

Written under data_dir in development, they hold private links, personal
data and keys. A file gets mode 0600 as it is created and a folder 0700, so
there is no moment when another user could open them; a folder an older
version left open to others is closed when it is next used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def private_folder(path: Path) -> Path:
    """`path`, created with its missing parents as folders of mode 0700; closed to others if it was open."""
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_FOLDER)
        except FileExistsError:  # another process made it in between
            pass
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(PRIVATE_FOLDER)
    return path


def write_private(path: Path, data: bytes) -> Path:
    """Write `data` to a new file of mode 0600 (FileExistsError if there is one already)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return path
