"""The CLI and ground tools: capture, replay, plot, flash, HIL plugin and campaigns."""
