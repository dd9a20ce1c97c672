"""``python -m s2npy``: the same as the ``s2npy`` command."""

from .cli import main

raise SystemExit(main())
