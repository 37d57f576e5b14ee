"""The USB sensor board from the host: flashing, the hardware-in-the-loop device and the pytest plugin."""
