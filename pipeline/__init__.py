"""gmm-resnext: GMM-ResNext speaker verification (Yan et al., arXiv 2407.03135) as a Kaldi-style recipe.

`from pipeline import SpeakerModel` gives a trained experiment as a Python object (`pipeline/speaker_model.py`);
`python -m pipeline <command>` the command line.
"""

__all__ = ["SpeakerModel"]


def __getattr__(name: str):
    # Imported on first use: the command line (`python -m pipeline make-mfcc`) must not pay for torch.
    if name == "SpeakerModel":
        from pipeline.speaker_model import SpeakerModel
        return SpeakerModel
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
