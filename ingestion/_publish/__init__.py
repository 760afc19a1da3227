"""What readers get: the validated snapshot (``snapshot``) and read-only SQL on it (``sql``)."""
