"""Gorax's own node types, one module each; registered through the ``gorax.nodes`` entry point."""
