"""Azure Functions entry point (Python v2 model): triggers only."""
