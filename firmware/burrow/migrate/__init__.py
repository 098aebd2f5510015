"""Migration from Pi-hole and AdGuard Home: a foreign setup read into one neutral model
(:mod:`.model`), planned against Burrow's stores (create / change / unchanged / skipped, each
with why) and applied all or nothing (:mod:`.plan`). Readers: Pi-hole v6 Teleporter archives
(:mod:`.teleporter`, which also writes one of Burrow's state) and AdGuardHome.yaml
(:mod:`.adguard`)."""
