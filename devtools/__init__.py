"""Development tools for CycleCloud Lockdown Guard (never deployed)."""
