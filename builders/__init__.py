"""Bot definitions as values: the spec, typed edits, validation with human messages, diff, YAML.

Pure: nothing here does I/O.
"""
