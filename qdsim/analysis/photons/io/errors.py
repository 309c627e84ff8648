"""What the readers raise and warn for a damaged or unreadable file."""

from __future__ import annotations

__all__ = ["FileFormatError", "FileFormatWarning", "NotAPhotonFileError"]


class FileFormatError(ValueError):
    """A file the readers cannot read (unknown format, corrupt header, truncated or damaged
    records). The message is one line: the file's path, then the problem."""


class NotAPhotonFileError(FileFormatError):
    """The file is intact as far as the reader can tell, but is no photon (TTTR) file: another
    PicoQuant file (PHU histogram, settings, ...) or a format the reader does not know."""


class FileFormatWarning(UserWarning):
    """A file was read, but not all of it: the warning says what was skipped and why."""
