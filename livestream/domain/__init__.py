"""The live-shopping domain: sessions a merchant (or a KOL for them) hosts, and the flash deals
sold during them. Pure aggregates: no HTTP, no storage, time always passed in."""
