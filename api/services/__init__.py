"""Services own queries and invariants; every function takes ``tenant_id`` keyword-only."""
