"""The substation agent: config, profiles, supervision, normalization, CLI."""

__version__ = "0.1.0"
