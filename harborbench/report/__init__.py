"""Rendering of results: Rich tables for people, CSV and JSON files for machines.

Only this package and :mod:`harborbench.cli` import Rich.
"""
