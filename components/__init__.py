"""Ladder's components: pure renderers and validation, and the thin ComponentResources that wire them."""
