"""Reading measurement files: photon time tags and TCSPC histograms.

- `read_photons(path)` / `iter_photons(path, chunk_records)`: PicoQuant PTU (T2/T3, PicoHarp,
  HydraHarp v1/v2, TimeHarp 260, MultiHarp record types; header through `ptufile`, or a scan
  that mirrors it, see `ptu`) and legacy PicoHarp .pt2/.pt3 and HydraHarp .ht2/.ht3 files, to
  `PhotonStream`s with absolute times in ps and int8 channels. Files are recognised by
  content. Records are decoded by a numba kernel (`fast`); the NumPy decoder
  `records.decode_numpy` is its reference (`QDSIM_PHOTON_DECODER=numpy` selects it).
- `read_histogram(path)`: PHU files, PicoQuant ASCII histogram exports, two-column CSV, to one
  `xarray.DataArray` per curve.
- `FileFormatError` (a `ValueError`): a damaged or unknown file, one line naming it and the
  problem (`NotAPhotonFileError`: an intact file of another kind); `FileFormatWarning`: a file
  read only in part (what was skipped, and why).
- `count_records(path)`: census of a photon file's records (photons per channel, sync, marker
  and overflow records).

Channels follow ptufile's numbering (from 0). T2 sync records of the HydraHarp family are kept
only on request, on channel `SYNC_CHANNEL` (-1).
"""

from __future__ import annotations

from qdsim.analysis.photons.io.ascii import read_histogram
from qdsim.analysis.photons.io.errors import FileFormatError, FileFormatWarning, NotAPhotonFileError
from qdsim.analysis.photons.io.reader import count_records, iter_photons, open_records, read_photons
from qdsim.analysis.photons.io.records import SYNC_CHANNEL

__all__ = [
    "FileFormatError",
    "FileFormatWarning",
    "NotAPhotonFileError",
    "SYNC_CHANNEL",
    "count_records",
    "iter_photons",
    "open_records",
    "read_histogram",
    "read_photons",
]
