"""Built-in campaign specs (TOML)."""
