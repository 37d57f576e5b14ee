"""``hullwatch monitor``: a live web page of the station, the leak and FDIR, fed by telemetry.

- state.py: :class:`MonitorState`, built packet by packet (never raises on bad input);
- series.py, eventlog.py, link.py, station.py: the plots' ring of housekeeping rows, the event
  log, link health, the station diagram;
- sources.py: UDP, capture (read or followed) and in-process feeds;
- server.py: the tornado web server (page, ``/api/state``, websocket live updates; the charts are
  plotly.js from the ``plotly`` package);
- commands.py: :class:`Commander`, the page's actions as telecommands, with their reports;
- app.py: :func:`open_monitor`, all of it together.

The page and its API are documented in docs/monitor.md.
"""

from .app import Monitor, open_monitor
from .commands import Commander
from .server import DEFAULT_HTTP, MonitorServer, parse_hostport
from .sources import CaptureSource, FeedSink, UdpSource, parse_udp_url
from .state import PA_PER_MMHG, MonitorState

__all__ = [
    "Monitor", "open_monitor", "Commander", "DEFAULT_HTTP", "MonitorServer", "parse_hostport", "CaptureSource",
    "FeedSink", "UdpSource", "parse_udp_url", "PA_PER_MMHG", "MonitorState",
]
