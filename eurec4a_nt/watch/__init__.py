"""Folders that publish themselves: see :mod:`eurec4a_nt.watch.folder`."""
