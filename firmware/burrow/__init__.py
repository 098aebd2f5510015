"""Burrow: a DNS sinkhole appliance for single-board computers."""

__version__ = "0.1.0"
# The day this version was released, raised with __version__: a clock that reads earlier is
# certainly wrong (burrow/clock.py: Burrow keeps waiting for network time then).
__release_date__ = "2026-12-07"
