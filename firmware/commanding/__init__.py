"""Telecommands in the flight software: the bounded queue, acceptance checks, execution and
service 1 verification, service 20 parameter ids, and the UDP telecommand link.

- queue.py: :class:`TcQueue`, bounded and thread-safe, between the links and the loop.
- accept.py: :func:`parse`, the layered acceptance checks of one packet.
- service.py: :class:`Commanding`, what the flight loop runs at the start of each cycle.
- reports.py: verification reports on the fast path.
- parameters.py: FDIR parameter ids and single-parameter get/set (service 20).
- udp_link.py: :class:`UdpTcLink`, ``udp://HOST:PORT`` into the queue.

docs/commanding.md is the reference.
"""

from .accept import Rejection, Request, parse
from .parameters import PARAMETER_IDS, PARAMETER_NAMES
from .queue import COMMAND_QUEUE, REFUSED_RING, Refusal, TcQueue
from .service import SOURCE_IN_PROCESS, SOURCE_SEQUENCE, Commanding, Receipt
from .udp_link import DEFAULT_TC_URL, UdpTcLink, parse_tc_url

__all__ = ["Rejection", "Request", "parse", "PARAMETER_IDS", "PARAMETER_NAMES", "COMMAND_QUEUE",
           "REFUSED_RING", "Refusal", "TcQueue", "SOURCE_IN_PROCESS", "SOURCE_SEQUENCE", "Commanding",
           "Receipt", "DEFAULT_TC_URL", "UdpTcLink", "parse_tc_url"]
