"""Simulated relays: the interface every protocol's relay implements, its registry, and one
package per protocol."""
