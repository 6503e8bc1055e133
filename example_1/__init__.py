"""Example 1 of the paper: three coupled linear systems on a chain."""
