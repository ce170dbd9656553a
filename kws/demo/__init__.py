"""``make demo``: the whole pipeline on the embedded samples, as resumable steps."""
