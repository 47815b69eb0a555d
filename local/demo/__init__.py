"""The demo corpus builder: real people that Debian packages carry, synthesised or recorded, made into a corpus.

Imported as `local.demo` with the repo root on the path (path.sh puts it there; `local/make_demo_corpus.py` does
too). One module per job:
  table.py      the tab-separated people tables' reader
  dsp.py        levels, pauses, lengths, cuts and band limits shared by both kinds of speech
"""
