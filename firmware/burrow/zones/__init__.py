"""Local authoritative data: zones, records, zone-file import/export, secondary zones (AXFR)."""
