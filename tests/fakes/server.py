"""What every fake platform shares: its ASGI app served by uvicorn on 127.0.0.1:0 in a thread of
its own, so that one session-scoped fake serves every test's event loop."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

import uvicorn


class ServedFake:
    """Subclasses set `name` and `app` (an ASGI app); `start()` serves it, `stop()` ends it."""

    name: ClassVar[str]
    # "on" for an app that needs its lifespan run (an MCP server's session manager).
    lifespan: ClassVar[Literal["on", "off"]] = "off"
    app: Any
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        """Serve on 127.0.0.1 at a free port, in a thread of its own; returns once listening."""
        if self._thread is not None:
            raise RuntimeError(f"the fake {self.name} is already started")
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan=self.lifespan,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"fake-{self.name}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                self.stop()
                raise RuntimeError(f"the fake {self.name} server did not start")
            time.sleep(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving (answers still delayed are cut short)."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread, self.port = None, None, 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
