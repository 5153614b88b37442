"""dynacell.io — read and write movies, label movies and CTC track files (no torch).

Readers return a lazy :class:`Movie` (dask array, one chunk per frame, axes ``(T, [Z,] Y, X)``);
writers write into a temporary sibling and rename it into place.
"""

from dynacell.io.checks import check_same_grid
from dynacell.io.ctc import read_ctc_tracks, validate_tracks, write_ctc_result
from dynacell.io.movie import Movie
from dynacell.io.readers import detect_format, open_labels, open_movie
from dynacell.io.writers import write_ome_zarr, write_tiff_series

__all__ = [
    "Movie",
    "open_movie",
    "open_labels",
    "detect_format",
    "read_ctc_tracks",
    "validate_tracks",
    "write_tiff_series",
    "write_ome_zarr",
    "write_ctc_result",
    "check_same_grid",
]
