"""Sizing: size_for and its batch forms, what they apply (terms), and the in-memory hot state they read."""
