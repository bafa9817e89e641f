"""The one source of sdegen's version (read by pyproject.toml and `sdegen --version`)."""

__version__ = "0.2.0.dev0"
