"""Ray cluster access: connect to a running cluster or start an embedded one; job submission."""
