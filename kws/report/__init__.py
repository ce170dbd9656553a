"""``kws report``: a run folder's artefacts found by content and rendered as HTML and Markdown."""
