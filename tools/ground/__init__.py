"""Ground work on telemetry, kept out of the flight software: reading captures (streaming and in
numpy batches, every CRC checked, resynchronising after damage), the numpy bulk decoder and the
machine-readable telemetry dictionary.

- capture.py: :func:`iter_capture`, :func:`iter_raw_packets`, :func:`iter_packet_batches`
  (:class:`PacketBatch`), :class:`Skip`, :class:`CapturedPacket`.
- bulk.py: vectorised CRC checks and framing, numpy dtypes of the raw-samples and housekeeping bodies.
- dictionary.py: :func:`build_dictionary` (what ``hullwatch dictionary`` prints).
"""

from .capture import CapturedPacket, PacketBatch, Skip, iter_capture, iter_packet_batches, iter_raw_packets
from .dictionary import build_dictionary

__all__ = ["CapturedPacket", "PacketBatch", "Skip", "iter_capture", "iter_packet_batches", "iter_raw_packets",
           "build_dictionary"]
