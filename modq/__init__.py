"""modq layer 0: errors, settings, schemas, canonical categories. Imports nothing internal."""
