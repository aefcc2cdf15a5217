"""`python -m gpubk ...`: the same as the `gpubk` command."""
import sys

from .cli import main

sys.exit(main())
