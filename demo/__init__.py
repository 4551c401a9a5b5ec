"""`relay-demo`: a simulated substation, the agent, a broker and the service center on
this machine, playing the seed's fault scenario and printing tickets as they open."""
