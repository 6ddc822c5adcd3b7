"""HTTP and room wiring for live sessions: use cases, the controller, the runtime."""
