"""accelrl.autotune."""
