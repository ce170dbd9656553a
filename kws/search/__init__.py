"""``kws search``: the most accurate model of the zoo that fits a board (MCUNet-style width x resolution)."""
