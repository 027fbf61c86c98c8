"""``python -m engine.cli``: the ``ruimtepuzzel`` command without its console script."""

import sys

from engine.cli import main

sys.exit(main())
