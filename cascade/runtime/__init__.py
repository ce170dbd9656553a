"""Running a cascade: its bundle, the int8 stages, the gate, the decision and the streaming pipeline."""
