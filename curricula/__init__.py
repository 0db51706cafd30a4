"""accelrl.curricula."""
