"""gohook: per-module capability enforcement for compiled Go programs."""

__version__ = "0.1.0"
