"""Other products' APIs over Burrow's services (DESIGN.md, "faces"): pihole (its own listener), adguard (/control/ on the main one)."""
