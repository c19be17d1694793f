"""The README's first command: run streamsync's main job on the bundled real data."""

import glob
import os
import sys

from streamsync.cli import main

here = os.path.dirname(os.path.abspath(__file__))
journals = sorted(glob.glob(os.path.join(here, "..", "tests", "data", "gluster-10.3", "raw",
                                         "ascii-delpath-on", "CHANGELOG.*")))
sys.exit(main(["decode", *journals]))
