"""``python -m eurec4a_nt`` is the ``eurec4a-nt`` command."""

import sys

from .cli import main

sys.exit(main())
