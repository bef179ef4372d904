"""Azure adapters: ARM, Event Grid parsing (ARM events), evidence."""
