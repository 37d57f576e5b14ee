"""Example files shipped with the package, printed by ``hullwatch example NAME``.

``board.toml`` is the same file as the repository's ``examples/board.toml`` (a test keeps them
identical), so a pip-installed user can follow the README without a clone.
"""
