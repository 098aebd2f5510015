"""Burrow: a DNS sinkhole appliance for single-board computers."""

__version__ = "0.1.0"
