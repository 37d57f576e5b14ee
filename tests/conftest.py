"""Suite-wide set-up."""

from __future__ import annotations

import signal

# Several tests interrupt a `hullwatch` subprocess with SIGINT (Ctrl-C), as a user would. When
# the suite itself starts with SIGINT ignored (launched in the background by a non-interactive
# shell, or under nohup), its children would inherit the ignore across exec and never see the
# signal. A handler here becomes the default disposition in the children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
