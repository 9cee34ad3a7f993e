"""maasops: back up and restore whole MAAS deployments over SSH."""

__version__ = "0.1.0"
