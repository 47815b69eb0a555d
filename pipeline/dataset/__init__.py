"""Reading model inputs from Kaldi data dirs (`features`: no torch needed), and the training crops and sampler built
on them (`crops`)."""
