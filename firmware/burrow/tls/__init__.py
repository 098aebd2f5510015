"""TLS: certificates and the encrypted listeners (issue 17)."""
