"""A simulated IEC 104 relay on c104's server, a raw-socket outstation that sends exactly the
bytes it is given, and paced load for benchmarks."""
