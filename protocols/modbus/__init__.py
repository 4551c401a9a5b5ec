"""Modbus TCP / RTU / RTU-over-TCP relays on pymodbus: identity, event log, status, settings.

Layout: `config.py` (device keys), `profile.py` (the profile's `[modbus]` section),
`codec.py` (pure register and record decoding), `eventlog.py` (ring-buffer arithmetic and
the persisted read position), `link.py` (the pymodbus client and the read-only choke point),
`poller.py` (one device's poll loop), `driver.py` (one link's driver), `spec.py` (registry).
"""
