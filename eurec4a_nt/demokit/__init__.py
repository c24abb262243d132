"""The demo kit: what the demo, the worked notebooks, the tests and the benchmarks
build a campaign on one machine from.

- :mod:`.emulator`: a satellite link between two loopback ports (bandwidth each way,
  delay, outages), a plain TCP relay;
- :mod:`.sampledata`: sample files of the campaign's kinds (sondes, quicklooks, flight
  plans, raw instrument files, zarr time series), deterministic for a seed;
- :mod:`.sites`: real site servers in subprocesses on loopback ports;
- :mod:`.campaign`: a hub and sites dialling it over emulated links.

The site server, the sync core and the client import nothing from here.
"""
