"""Front ends: MFCC + VAD, diagonal GMMs, and log Gaussian probability (LGP) maps."""
