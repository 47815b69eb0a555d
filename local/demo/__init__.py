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
  people.py               one Person per speaker of either kind, and the train / test / babble split
  clean_speech.py         the per-person jobs that make clean utterances of either kind
  degradation.py          room, noise and channel for every utterance
  corpus_tables.py        data dirs, trials lists, speakers.tsv and conditions.tsv
  corpus.py               the whole build (make_demo_corpus), rebuilt only when its inputs change
The command line is `local/make_demo_corpus.py`, which `local/make_demo_data.sh` (stage 0) runs.
"""
