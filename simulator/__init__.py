"""Simulated relays for every protocol, driven by scenario files."""
