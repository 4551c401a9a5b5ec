"""Tests of the layer below every other package."""
