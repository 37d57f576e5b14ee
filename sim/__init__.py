"""The plant: modules, leaks, sensors, valves, scenarios and the board emulator."""
