"""accelrl.scripts."""
