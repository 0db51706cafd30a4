"""accelrl.agents."""
