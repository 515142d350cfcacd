"""``python -m sloth_bayes``: the ``sloth-bayes`` command line."""

import sys

from sloth_bayes.cli import main

if __name__ == "__main__":
    sys.exit(main())
