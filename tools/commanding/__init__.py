"""Ground-side commanding: operator verbs, stored sequences, the UDP command client.

- verbs.py: verb words or sequence-file keys -> telecommand dataclasses (one table).
- sequence.py: :func:`load_sequence` for ``hullwatch run --commands FILE.toml``.
- client.py: :class:`CommandClient`, sends a telecommand over UDP and follows its service 1
  reports on the telemetry link (``hullwatch command``, the monitor, HIL helpers).
- recorded.py: the telecommands a capture holds, with the times to re-apply them (rerun).

docs/commanding.md is the reference.
"""

from .sequence import SequencedCommand, load_sequence, sequence_from_dict
from .verbs import VERBS, VerbError, from_table, from_words

__all__ = ["SequencedCommand", "load_sequence", "sequence_from_dict", "VERBS", "VerbError", "from_table",
           "from_words"]
