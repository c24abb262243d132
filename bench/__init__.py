"""Benchmarks: eurec4a-nt and its peers (rsync, Syncthing, nginx, sha256sum) on the
same emulated links and data, in one run. ``python -m bench --help``."""
