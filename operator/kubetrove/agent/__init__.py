"""The guest agent: the sidecar in every database pod, and the only code that knows engine syntax."""
