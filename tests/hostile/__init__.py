"""Hostile and broken submissions for tests/test_hostile.py: notebook generators, no fixtures.

`notebooks.py` builds each hostile notebook from the solution notebook: attack code goes into the answer cells
(`attacks.py` holds it, as source text with `__NAME__` placeholders for the paths and ports of one test run), or
the notebook itself is tampered with or broken. Every attack is inert when it succeeds: it only reports what it
could do (read a canary, open a file for appending without writing, connect to a server the test runs), so a
broken fence shows up as a failed assertion, never as damage.
"""
