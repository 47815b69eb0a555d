"""Reading model inputs from Kaldi data dirs, and the training segments and sampler built on them."""
from pipeline.dataset.crops import (EpochBatchSampler, RandomCropDataset, evenly_spaced_crops, make_loader,
                                    repeat_to_length, speaker_labels)
from pipeline.dataset.features import (MFCC_INPUT, FeatureSource, input_data_dir, input_names,
                                       inputs_from_mfcc)

__all__ = ["EpochBatchSampler", "FeatureSource", "MFCC_INPUT", "RandomCropDataset", "evenly_spaced_crops",
           "input_data_dir", "input_names", "inputs_from_mfcc", "make_loader", "repeat_to_length",
           "speaker_labels"]
