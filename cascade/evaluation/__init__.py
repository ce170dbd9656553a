"""Measuring a cascade: clip accuracy, gate calibration, long streams, DET curves, operating points, mining."""
