"""The demo corpus builder: real people that Debian packages carry, synthesised or recorded, made into a corpus.

Imported as `local.demo` with the repo root on the path (path.sh puts it there; `local/make_demo_corpus.py` does
too). One module per job:
  table.py                the tab-separated people tables' reader
  dsp.py                  levels, pauses, lengths, cuts and band limits shared by both kinds of speech
  debian_packages.py      the package cache: apt-get download, dpkg -x
  recorded_speakers.py    the recorded people (recordings.tsv) and which packaged files are each one's
  clip_audio.py           a recorded clip decoded (G.722, Ogg) and trimmed to its speech
  recorded_utterances.py  a recorded person's clips joined or cut into utterances
  tts_voices.py           the synthesised people (voices.tsv), their texts (texts/), the voices installed here
  tts_plan.py             what each synthesised utterance says, in which voice, pitch and rate
  tts_engines.py          the synthesisers (MBROLA, flite, Festival, RHVoice, Pico, Open JTalk) run on a plan
"""
