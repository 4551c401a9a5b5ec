"""The service center: idempotent MQTT ingest, storage, automatic ticketing, REST API and
webhook connector. See docs/center.md."""
