"""napari plugin of dynacell (npe2 manifest ``napari.yaml``).

- **Reader**: drag a ``dynacell run`` output folder onto napari (or ``napari OUT``) to open the
  movie, the nuclei coloured by state, the nuclei labelled by track id and the tracks with their
  lineage (daughters linked to mothers), all in µm when the pixel size is known.
- **Widget** *Run dynacell* (``Plugins › dynacell``): runs ``dynacell run`` on the open image layer
  (and a labels layer, if you have one) and opens the result.

napari itself is only imported by these modules, never by the rest of dynacell.
"""

from dynacell.napari._reader import get_reader, read_run_folder

__all__ = ["get_reader", "read_run_folder"]
