"""What both daemons, the protocols, the profiles and the simulator share below them: config
errors, TOML reading and validation wording, the strict config base and id patterns.

Imports nothing of the product's other packages, so every layer may import it."""
