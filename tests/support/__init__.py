"""Helpers shared by test modules, which never import each other: one concern per module."""
