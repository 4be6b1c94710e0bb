"""The datastore stage."""
