"""Scenarios: YAML in (`scenarios/`, `manifests/`), an engine that applies, checks the evidence of the
path and cleans up, results out (terminal, JUnit XML, an evidence folder on failure)."""
