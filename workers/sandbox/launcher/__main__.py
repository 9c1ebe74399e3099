"""`python -m launcher CONFIG_JSON | --probe`: confine, then exec (see `launch.py`)."""

import sys

from .launch import main

sys.exit(main(sys.argv))
