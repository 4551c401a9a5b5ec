"""IEC 60870-5-103 master over FT1.2 serial links (see README.md).

`codec/` is the pure codec (frames, ASDUs, time tags; no I/O); `link` is the only module
with threads and serial I/O; `driver` implements `protocols.driver.Driver`.
"""
