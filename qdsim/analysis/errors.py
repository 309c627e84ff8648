"""What the file readers of both workflows raise and warn for a damaged or unreadable file.

Shared by `photons.io` (photon and histogram files) and `spectroscopy` (spectrometer camera
files), which never import each other, so that one `except FileFormatError` catches both.
"""

from __future__ import annotations

__all__ = ["FileFormatError", "FileFormatWarning"]


class FileFormatError(ValueError):
    """A file the readers cannot read (unknown format, corrupt header, truncated or damaged
    records, a spectrum without wavelength calibration). The message is one line: the file's
    path, then the problem."""


class FileFormatWarning(UserWarning):
    """A file was read, but not all of it, or some of its values are suspect (NaN or saturated
    pixels): the warning says what and why."""
