"""Tests of device profiles and their generated reference."""
