"""A monitor put together: the state, its web server and one telemetry source.

``hullwatch monitor`` and ``hullwatch run --monitor`` are thin layers over :func:`open_monitor`.
"""

from __future__ import annotations

from typing import Callable

from ..errors import InputError
from ..ground.capture import Skip
from .commands import Commander
from .server import DEFAULT_HTTP, MonitorServer, parse_hostport
from .sources import CaptureSource, FeedSink, UdpSource, parse_udp_url
from .state import MonitorState


class Monitor:
    """A running monitor. ``url`` is the page; ``state`` what it shows; ``feed`` (for an
    in-process run) the telemetry sink to give the flight loop. Close it to stop everything."""

    def __init__(self, state: MonitorState, server: MonitorServer,
                 source: UdpSource | CaptureSource | None = None, feed: FeedSink | None = None) -> None:
        self.state = state
        self.server = server
        self.source = source
        self.feed = feed

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        """Stop the source, the feed and the server (idempotent)."""
        if self.source is not None:
            self.source.stop()
        if self.feed is not None:
            self.feed.close()
        self.server.stop()
        if self.state.commander is not None:
            self.state.commander.close()

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_monitor(http: str = DEFAULT_HTTP, *, tm: str | None = None, capture: str | None = None,
                 follow: bool = False, feed: bool = False, source_name: str | None = None,
                 on_skip: Callable[[Skip], None] | None = None, tc: str | None = None) -> Monitor:
    """Start a monitor serving on ``http`` (``HOST:PORT``; port 0 picks a free one) fed by
    exactly one of: UDP telemetry ``tm`` (``udp://HOST:PORT``), a ``capture`` file (read once,
    or followed with ``follow``), or ``feed`` (packets written to :attr:`Monitor.feed`). With
    ``tc`` (``udp://HOST:PORT``, the flight software's TC link) the page can command.

    Raises InputError for a bad address, one that cannot be bound, or not exactly one source."""
    chosen = [x for x in (tm, capture, feed or None) if x]
    if len(chosen) != 1:
        raise InputError("monitor: give exactly one source: tm (udp://HOST:PORT), a capture, or feed")
    host, port = parse_hostport(http)
    udp = parse_udp_url(tm) if tm else None
    tc_address = parse_udp_url(tc, "--tc") if tc else None
    name = source_name or (f"{capture} (following)" if capture and follow else capture) or "this run"
    state = MonitorState(name)
    if tc_address is not None:
        state.commander = Commander(*tc_address)
    source: UdpSource | CaptureSource | None = None
    sink: FeedSink | None = None
    if udp is not None:
        source = UdpSource(state, *udp)  # bind first: a taken port fails before the page is up
        udp_host, udp_port = source.address  # (not the page's address: that is --http's)
        state.source = source_name or f"udp://{udp_host}:{udp_port}"
    server = MonitorServer(state, host, port)
    try:
        server.start()
    except BaseException:
        if source is not None:
            source.stop()
        raise
    if capture is not None:
        source = CaptureSource(state, capture, follow=follow, on_skip=on_skip)
    if source is not None:
        source.start()
    if feed:
        sink = FeedSink(state)
    return Monitor(state, server, source, sink)
