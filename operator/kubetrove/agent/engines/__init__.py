"""Engine drivers: one module per engine behind ``EngineDriver``; the only code with engine syntax."""
