"""TLS for the box's own listeners: the certificate it serves with, and the service that keeps
the encrypted listeners (DNS over TLS, HTTPS for the admin page, the API and DNS over HTTPS)
in step with it.

- ``certs.py``: certificate material (load and validate a PEM pair, describe it, make a
  self-signed one, write it atomically) and the server ``ssl.SSLContext``. The ``cryptography``
  library is imported inside the functions that need it, never at module import.
- ``acme.py``, ``dnsproviders.py``, ``certfiles.py``: ACME issuance (HTTP-01, DNS-01 through a
  provider's API), its renewal policy, and the atomic writes of a certificate pair.
- ``service.py``: ``TlsService``, the lifecycle service: which certificate is in force, the
  listeners it starts and stops, and the reload of manual PEM files when they change.

The listeners themselves belong to their layers (the DNS server's DoT listener in
burrow/dns/server.py, the web service's HTTPS listener in burrow/api/server.py); the composition
root hands them to the service as ``TlsListener`` objects.
"""
