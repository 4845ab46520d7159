"""``python -m nstlab``: the same as the ``nstlab`` command."""

from nstlab.cli import main

raise SystemExit(main())
