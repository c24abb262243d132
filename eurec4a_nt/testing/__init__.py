"""Reusable pieces for testing eurec4a-nt and things built on it: a conformance suite
every object store backend runs (:mod:`.store_tests`) and test servers (S3, TLS, a
proxy). Real site servers and campaigns to test against are in
:mod:`eurec4a_nt.demokit`."""
