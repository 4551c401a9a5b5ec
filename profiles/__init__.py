"""Device profiles: what each address of a relay means (`model`), and the reference that
documents every key of them (`reference`, rendered into docs/profiles.md).

Below the agent and the simulator: both read the same profiles, and neither imports the
other."""
