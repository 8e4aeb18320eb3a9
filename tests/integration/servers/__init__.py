"""Engine servers the integration tier starts as private processes on loopback."""
