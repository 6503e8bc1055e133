"""Example 2 of the paper: load frequency control of a four-area power system."""
