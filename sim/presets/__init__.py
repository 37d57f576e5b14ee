"""Built-in scenario presets (TOML)."""
