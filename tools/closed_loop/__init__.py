"""The closed loop as a library: run the flight software against a device, its timeline and plot."""
