"""What the readers raise and warn for a damaged or unreadable file (`FileFormatError` and
`FileFormatWarning` live in `qdsim.analysis.errors`, shared with the spectrum readers)."""

from __future__ import annotations

from qdsim.analysis.errors import FileFormatError, FileFormatWarning

__all__ = ["FileFormatError", "FileFormatWarning", "NotAPhotonFileError"]


class NotAPhotonFileError(FileFormatError):
    """The file is intact as far as the reader can tell, but is no photon (TTTR) file: another
    PicoQuant file (PHU histogram, settings, ...) or a format the reader does not know."""
