"""The uplink: wire records, the durable outbox, the MQTT session and the forwarder."""
