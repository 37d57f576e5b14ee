"""The monitor's web server: the page, its assets, ``/api/state`` and live updates by websocket.

Built on tornado (HTTP server and websockets); the charts are plotly.js, served from the copy
inside the ``plotly`` Python package, so the page loads nothing from the internet.

Routes (GET unless said):

- ``/``: the page; ``/static/...``: its script and style, and ``/static/plotly.min.js``;
- ``/api/state?events=N``: the whole state as JSON (the last N events, default 200);
- ``/api/series?window=S&points=N``: the plot data of the last S mission seconds (``all``: all
  held), at most about N rows (default 1500);
- ``/api/events?since=SEQ``: the events numbered SEQ and later;
- ``POST /api/command`` (JSON body): an action of the page (acknowledge alarms, set the FDIR
  mode) sent as a telecommand when the monitor has a TC link (:mod:`.commands`);
- ``/ws``: the live feed (websocket). The page sends ``{"window_s": S}`` (or null for all) when
  it connects and whenever the plot window changes; the server answers with the series of that
  window (``{"type": "series", ...}``) and then, every :attr:`MonitorServer.period_s` wall
  seconds while anything changed, an update (``{"type": "update", "state": ..., "events": [...],
  "series": {...}}``) carrying the panels, the new events and the new plot rows thinned to the
  client's window.

A slow client is not waited for: while its last update is still being sent it gets no new one
(the next one carries everything since), so the server never falls behind.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import math
import threading
import time
from pathlib import Path
from typing import Any

from urllib.parse import urlsplit

import orjson
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket
from tornado.ioloop import PeriodicCallback

from ..errors import InputError
from .state import MonitorState

#: default address of the page
DEFAULT_HTTP = "127.0.0.1:8025"

#: most points a plot gets per series over its window
DEFAULT_POINTS = 1500

#: wall seconds between updates when nothing new arrived (packets/s and ages still move)
HEARTBEAT_S = 2.0

STATIC_DIR = Path(str(importlib.resources.files(__package__) / "static"))


def plotly_js_dir() -> Path:
    """The folder of ``plotly.min.js`` inside the installed ``plotly`` package."""
    return Path(str(importlib.resources.files("plotly") / "package_data"))


def parse_hostport(text: str, what: str = "--http") -> tuple[str, int]:
    """``HOST:PORT``, ``[V6ADDR]:PORT`` or ``:PORT`` (loopback) -> (host, port).

    Raises InputError naming ``what`` and what was expected."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise InputError(f"{what} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8025")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise InputError(f"{what} {text!r}: the port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise InputError(f"{what} {text!r}: the port must be 0..65535")
    return host, port


def _json(handler: tornado.web.RequestHandler, data: Any) -> None:
    handler.set_header("Content-Type", "application/json")
    handler.set_header("Cache-Control", "no-store")
    handler.write(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY))


def _window_arg(text: str | None, default: float | None) -> float | None:
    if text is None:
        return default
    if text == "all":
        return None
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise ValueError("window must be > 0 seconds or 'all'")
    return value


class _Base(tornado.web.RequestHandler):
    def initialize(self, monitor: "MonitorServer") -> None:
        self.monitor = monitor

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors in JSON too, with the reason (``{"error": "events: expected an integer,
        got 'abc'"}``), not tornado's HTML page."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        reason = exc.log_message if isinstance(exc, tornado.web.HTTPError) and exc.log_message \
            else self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({"error": reason}))

    def _int_arg(self, name: str, default: int) -> int:
        text = self.get_argument(name, None)
        if text is None:
            return default
        try:
            return max(0, int(text))
        except ValueError:
            raise tornado.web.HTTPError(400, f"{name}: expected an integer, got {text!r}") from None


class _Page(_Base):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(self.monitor.page)


class _State(_Base):
    def get(self) -> None:
        _json(self, self.monitor.state.snapshot(events=self._int_arg("events", 200)))


class _Events(_Base):
    def get(self) -> None:
        since = self._int_arg("since", 0)
        with self.monitor.state.lock:
            events = self.monitor.state.events.since(since)
        _json(self, {"events": events})


class _Series(_Base):
    def get(self) -> None:
        try:
            window = _window_arg(self.get_argument("window", None), 900.0)
        except ValueError as exc:
            raise tornado.web.HTTPError(400, f"window: {exc}") from None
        points = max(2, self._int_arg("points", DEFAULT_POINTS))
        _json(self, self.monitor.state.series_window(window, points))


class _Command(_Base):
    """POST an action of the page (docs/monitor.md, "Commanding"): 202 with its record."""

    def _fail(self, status: int, text: str) -> None:
        self.set_status(status)
        _json(self, {"error": text})

    def post(self) -> None:
        # Only the page (same origin, JSON) may command: a form or script on another site cannot
        # send application/json here without a preflight, which this server does not answer.
        if not self.request.headers.get("Content-Type", "").startswith("application/json"):
            return self._fail(415, "expected Content-Type: application/json")
        origin = self.request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.request.host:
            return self._fail(403, f"commands are taken from this server's own page, not from {origin}")
        if self.monitor.state.commander is None:
            return self._fail(409, "no telecommand link: start the monitor with --tc udp://HOST:PORT")
        try:
            action = orjson.loads(self.request.body)
            if not isinstance(action, dict):
                raise InputError("expected a JSON object such as {\"command\": \"mode\", \"mode\": \"passive\"}")
            record = self.monitor.state.command(action)
        except orjson.JSONDecodeError as exc:
            return self._fail(400, f"not JSON: {exc}")
        except InputError as exc:
            return self._fail(400, str(exc))
        self.monitor.wake()
        self.set_status(202)
        _json(self, record)


class _Live(tornado.websocket.WebSocketHandler):
    """One page's live feed (see the module doc)."""

    def initialize(self, monitor: "MonitorServer") -> None:
        self.monitor = monitor
        self.window_s: float | None = 900.0
        self.points = DEFAULT_POINTS
        self.after_utc = -math.inf
        self.stat_after = -math.inf
        self.hint = 0
        self.ready = False
        self.generation = -1
        self.sending: Any = None  #: the Future of the last update written

    def open(self, *args: str) -> None:
        self.monitor.clients.add(self)

    def on_close(self) -> None:
        self.monitor.clients.discard(self)

    def on_message(self, message: str | bytes) -> None:
        try:
            request = orjson.loads(message)
            window_s = _window_arg(None if request.get("window_s") is None else str(request["window_s"]), None)
            points = request.get("points", DEFAULT_POINTS)
            if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= 20000:
                raise ValueError(f"points: expected an integer 2..20000, got {str(points)[:40]}")
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
            text = str(exc) if str(exc).startswith("points") else \
                "expected {\"window_s\": seconds or null, \"points\": 2..20000}"
            self.write_message(orjson.dumps({"type": "error", "text": text}))
            return
        self.window_s, self.points = window_s, points
        self.send_series()

    def send_series(self) -> None:
        state = self.monitor.state
        _, self.generation = state.layout_generation()
        series = state.series_window(self.window_s, self.points)
        self.after_utc = series["t"][-1] if series["t"] else -math.inf
        self.stat_after = series["stats"][-1]["utc_s"] if series["stats"] else -math.inf
        self.hint = 0
        self.ready = True
        self.write_message(orjson.dumps({"type": "series", "window_s": self.window_s, "series": series}),
                           binary=False)

    def busy(self) -> bool:
        """Whether the last update has not yet been handed to the network (a slow page)."""
        return self.sending is not None and not self.sending.done()


class MonitorServer:
    """Serves ``state`` over HTTP at ``host:port`` (port 0: any free port) from a thread of its
    own. :meth:`start` binds (raises InputError when the address cannot be bound) and returns;
    :meth:`stop` ends the thread."""

    def __init__(self, state: MonitorState, host: str = "127.0.0.1", port: int = 8025,
                 period_s: float = 0.25) -> None:
        self.state = state
        self.host = host
        self.port = port
        self.period_s = period_s
        self.clients: set[_Live] = set()
        self.page = (STATIC_DIR / "index.html").read_bytes()
        self.updates_sent = 0
        self.updates_skipped = 0
        self._event_cursor = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sockets: list[Any] = []
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._last_key: tuple[Any, ...] = ()
        self._last_sent = 0.0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def application(self) -> tornado.web.Application:
        args = {"monitor": self}
        return tornado.web.Application([
            (r"/", _Page, args),
            (r"/api/state", _State, args),
            (r"/api/series", _Series, args),
            (r"/api/events", _Events, args),
            (r"/api/command", _Command, args),
            (r"/ws", _Live, args),
            (r"/static/(plotly\.min\.js)", tornado.web.StaticFileHandler, {"path": str(plotly_js_dir())}),
            (r"/static/(.*)", tornado.web.StaticFileHandler, {"path": str(STATIC_DIR)}),
        ], websocket_ping_interval=20)

    def start(self) -> "MonitorServer":
        try:
            self._sockets = tornado.netutil.bind_sockets(self.port, self.host)
        except OSError as exc:
            raise InputError(f"--http {self.host}:{self.port}: cannot listen there: {exc.strerror or exc}") from exc
        self.port = self._sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="hullwatch-monitor-http", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            raise InputError(f"monitor web server did not start: {self._failure}") from self._failure
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            server = tornado.httpserver.HTTPServer(self.application())
            server.add_sockets(self._sockets)
            publisher = PeriodicCallback(self.publish, self.period_s * 1000.0)
            publisher.start()
        except Exception as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            publisher.stop()
            server.stop()
            for ws in list(self.clients):
                ws.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def stop(self) -> None:
        """Stop serving (idempotent). Open pages see the connection close."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> "MonitorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Send the next round of updates even if no telemetry came (an action was recorded)."""
        self._last_key = ()

    def publish(self) -> None:
        """One round of live updates (runs on the server's loop, every ``period_s``)."""
        clients = [c for c in self.clients if c.ready]
        state = self.state
        with state.lock:
            events = state.events.since(self._event_cursor)
            self._event_cursor = state.events.count
        if not clients:
            return
        with state.lock:
            key = (state.link.packets, state.link.crc_errors, state.link.malformed, state.events.count,
                   len(state.notes), state.source_done, state.commander.count if state.commander else 0)
        now = time.monotonic()
        if key == self._last_key and now - self._last_sent < HEARTBEAT_S:
            return  # nothing new: no update (a heartbeat refreshes packets/s and ages)
        self._last_key, self._last_sent = key, now
        panels = state.panels()
        _, generation = state.layout_generation()
        for client in clients:
            if client.generation != generation:
                client.send_series()  # a new station or a new run: start the plots afresh
                continue
            if client.busy():
                self.updates_skipped += 1
                continue
            window = client.window_s if client.window_s is not None else 86400.0
            series, client.hint = state.series_since(client.after_utc, window, client.points, client.hint,
                                                     client.stat_after)
            if series["t"]:
                client.after_utc = series["t"][-1]
            if series["stats"]:
                client.stat_after = series["stats"][-1]["utc_s"]
            message = orjson.dumps({"type": "update", "state": panels, "events": events, "series": series})
            try:
                client.sending = client.write_message(message)
                self.updates_sent += 1
            except tornado.websocket.WebSocketClosedError:
                self.clients.discard(client)
