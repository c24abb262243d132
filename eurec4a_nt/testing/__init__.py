"""Reusable pieces for testing eurec4a-nt and things built on it: real site servers in
subprocesses (:mod:`.sites`) and a conformance suite every object store backend
runs (:mod:`.store_tests`)."""
