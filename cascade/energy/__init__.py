"""What a model or cascade costs on a microcontroller: MACs, flash, arena, cycles, energy, battery life."""
