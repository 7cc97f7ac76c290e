"""`python -m bench.scale_worker COUNTS_FILE serve --port P`: `main.py` (any of its commands),
with what this process asks of its databases counted, for `bench_scale`.

Every SQLAlchemy `Engine` of the process (the service's pool and any engine of its own, such as
the leader's connection) is listened to at the class level: each statement executed
(`before_cursor_execute`: the SQL the service sends; BEGIN, COMMIT and pool pings go through the
driver and are not counted), each commit and each rollback, and each connection checkout from a
pool (with `pool_pre_ping`, each checkout pings the server). A daemon thread writes the running
totals as JSON (`{"statements", "commits", "rollbacks", "checkouts"}`) to COUNTS_FILE every
0.1 s (written to a temporary file and renamed, so a reader never sees half of it). The
listeners only add one to a counter: the service runs as `main.py` does.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

WRITE_EVERY_S = 0.1
_counts = {"statements": 0, "commits": 0, "rollbacks": 0, "checkouts": 0}


def _statement(*_: Any) -> None:
    _counts["statements"] += 1


def _commit(*_: Any) -> None:
    _counts["commits"] += 1


def _rollback(*_: Any) -> None:
    _counts["rollbacks"] += 1


def _checkout(*_: Any) -> None:
    _counts["checkouts"] += 1


def _write_forever(path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    while True:
        temporary.write_text(json.dumps(_counts))
        os.replace(temporary, path)
        time.sleep(WRITE_EVERY_S)


def main(argv: list[str]) -> int:
    path, rest = Path(argv[0]), argv[1:]
    event.listen(Engine, "before_cursor_execute", _statement)
    event.listen(Engine, "commit", _commit)
    event.listen(Engine, "rollback", _rollback)
    event.listen(Pool, "checkout", _checkout)
    threading.Thread(target=_write_forever, args=(path,), name="counts", daemon=True).start()
    import main as studio  # the repository's main.py (the repository is on PYTHONPATH)

    return studio.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
