"""Interpretation: post-test probability and (later) findings interpretation."""
