"""Telemetry and telecommand packets (CCSDS + PUS-C), sinks."""
