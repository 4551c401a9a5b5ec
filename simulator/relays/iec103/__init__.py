"""A simulated IEC 103 relay: the secondary station on a pty or socket bus, its answers and
its disturbance recorder."""
