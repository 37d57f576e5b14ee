"""pyserial URL handlers (pyserial imports ``hullwatch.sim.urlhandler.protocol_<scheme>``)."""
