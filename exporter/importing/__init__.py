"""`import`: a Markdown checklist read, each item matched to a probe, written as config."""
