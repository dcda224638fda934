"""Hydra configs (installed as the package data `jaxalign.conf`; see pyproject.toml)."""
