"""mtl_lab: an interactive teaching lab for multi-task learning."""

__version__ = "0.1.0"
