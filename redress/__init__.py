"""redress: breach forensics in, compensation paid exactly once out."""

__version__ = "0.1.0"
