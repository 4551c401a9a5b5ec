"""Southbound protocol drivers: one subpackage per protocol (codec, link, driver)."""
