"""``python -m app.ops``: the operations CLI (also installed as ``pgjobs``)."""

from app.ops.cli import main

raise SystemExit(main())
