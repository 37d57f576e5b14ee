"""``hullwatch command``: send one telecommand to a running flight software and follow it."""

from __future__ import annotations

import argparse
import sys

from ...firmware.telemetry import packets as P
from ..commanding.client import CommandClient, Stage, read_text
from ..commanding.describe import describe_command, stage_text
from ..commanding.verbs import VerbError, from_words
from ..errors import EXIT_DEVICE, EXIT_OK, EXIT_VERDICT, InputError
from . import SUMMARIES

EXAMPLES = """\
verbs:
  ping                              17/1 are-you-alive
  valve NAME open|close             8/1 function 1 (NAME: valve id or index)
  mode active|passive|off           8/1 function 2
  ack [EVENT]                       8/1 function 3 (event name or id; none: all)
  params FILE                       8/1 function 4 (an FDIR parameter table, TOML)
  get PARAM                         20/1 (section.key or id)
  set PARAM VALUE [VALUE...]        20/3 (validated as the parameter file is)
  hk on|off [housekeeping|raw]      3/5, 3/6
  hk period S [housekeeping|raw]    3/31
  events enable|disable ID...       5/5, 5/6 (event names or ids)

examples:
  hullwatch run --realtime --tc udp://127.0.0.1:10024 --tm udp://127.0.0.1:10025    (the flight software, elsewhere)
  hullwatch command --to udp://127.0.0.1:10024 --tm udp://127.0.0.1:10025 ping
  hullwatch command --to udp://127.0.0.1:10024 --tm udp://127.0.0.1:10025 valve zarya-usos close

Each verification stage is printed as it arrives, with the round-trip time. Exit status: 0 the
command completed (1/7), 1 a failure report (1/2, 1/4 or 1/8), 2 bad arguments, 4 no answer
within the timeout (or the telemetry address cannot be bound).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "command", help=SUMMARIES["command"],
        description="Send one telecommand to a flight software listening with `hullwatch run --tc` "
        "and print each service 1 verification stage with its round-trip time.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--to", metavar="udp://HOST:PORT", default="udp://127.0.0.1:10024",
                   help="the flight software's TC link (default udp://127.0.0.1:10024)")
    p.add_argument("--tm", metavar="udp://HOST:PORT", default="udp://127.0.0.1:10025",
                   help="where the flight software sends telemetry; listened on here (default udp://127.0.0.1:10025)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="give up when nothing of the command arrives for S seconds (default 5)")
    p.add_argument("verb", metavar="VERB", help="ping, valve, mode, ack, params, get, set, hk, events")
    p.add_argument("words", nargs="*", metavar="ARG", help="the verb's arguments")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    if not args.timeout > 0:
        raise InputError(f"--timeout {args.timeout:g}: expected a number of seconds > 0")
    out = sys.stdout
    with CommandClient(args.to, args.tm, args.timeout) as client:
        valve_ids = None
        if args.verb == "valve" and args.words and not args.words[0].isdigit():
            valve_ids = client.valve_ids()
        try:
            command = from_words(args.verb, args.words, valve_ids, read_text)
        except VerbError as exc:
            raise InputError(str(exc)) from exc

        def show(stage: Stage) -> None:
            d = stage.report
            p = stage.packet
            what = stage_text(d) if isinstance(d, P.VerificationReport) else describe_command(d)
            out.write(f"{p.service}/{p.subtype}  {what}  ({stage.rtt_s * 1000:.1f} ms)\n")
            out.flush()

        seq = client.seq  # the sequence count send() will give this command
        out.write(f"sent {describe_command(command, valve_ids)} (TC apid {P.APID_COMMAND} seq {seq}) "
                  f"to {client.to[0]}:{client.to[1]}\n")
        out.flush()
        outcome = client.send(command, show, want=(P.AliveReport, P.ParameterReport))
    if outcome.completed:
        return EXIT_OK
    if outcome.failure is not None:
        return EXIT_VERDICT
    print(f"hullwatch: error: no answer from {args.to} within {args.timeout:g} s "
          f"(is `hullwatch run --tc` running, with --tm {args.tm}?)", file=sys.stderr)
    return EXIT_DEVICE
