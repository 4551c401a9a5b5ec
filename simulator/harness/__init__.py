"""What the demo, the end-to-end tests and the benchmarks share to run a substation: a
broker, the agent as a process and its config, the chaos rig and hostile inputs."""
