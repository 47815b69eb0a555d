"""A rehearsal of `conf/voxceleb.yaml`: small corpora laid out exactly as VoxCeleb1, VoxCeleb2, RIRS_NOISES and
MUSAN are distributed, with real audio in their real formats, for `local/rehearse_voxceleb.sh` to run stages 0-6 on.

Imported as `local.rehearsal` with the repo root on the path. One module per concept:
  celebrities.py     who is in each corpus: VoxCeleb ids, gender, nationality, set, and the TTS voice that speaks
  voxceleb_tree.py   the two VoxCeleb trees: wav and m4a audio, the meta CSVs and the three cleaned trial lists
  noise_trees.py     RIRS_NOISES (simulated small and medium rooms) and MUSAN (noise, music, speech)
  build.py           the whole build (make_rehearsal_corpora), redone only when its inputs change
The command line is `local/make_rehearsal_corpora.py`.
"""
