"""Tests of the registry backends, each against a real peer on loopback."""
