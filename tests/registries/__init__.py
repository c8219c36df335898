"""Tests of registries: the SDK, the backends and registry sync."""
