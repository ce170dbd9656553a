"""From keyword data to a calibrated cascade bundle: the steps `kws cascade train` and `kws demo` share."""
