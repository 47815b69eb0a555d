"""Resemblyzer embeddings of utterances streamed on standard input: the half of `bench_resemblyzer.py` that runs in
the peer's own environment (bench/.venv-resemblyzer), never in the recipe's. It imports numpy, torch and
Resemblyzer only, no module of the recipe.

    <stream> | bench/.venv-resemblyzer/bin/python bench/resemblyzer_embed.py --out X.npz --facts X.json

The stream holds, for each utterance, a header line `utt_id num_samples` and then that many little-endian float32
samples at 16 kHz in [-1, 1]; `bench_resemblyzer.py` writes it from the recipe's wav.scp reader. Each utterance goes
through Resemblyzer as its README shows: `preprocess_wav` (volume raised to -30 dBFS, silences over 0.2 s cut by
webrtcvad) and `VoiceEncoder.embed_utterance` (mean of the L2-normalised embeddings of 1.6 s partials, normalised).
An utterance in which the VAD keeps nothing is embedded whole (volume-normalised) and counted.

Writes `--out` (an .npz: `utts`, `embeddings` N x 256 float32) and `--facts` (a json: versions, parameter count,
audio and speech seconds, the utterances the VAD emptied, embedding time).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib.metadata import version

NOT_PEER_ENV = ("run it with the python of the peer's environment, bench/.venv-resemblyzer, which "
                "bench_resemblyzer.py builds (delete the folder to rebuild it)")
try:
    import numpy as np
except ImportError as err:
    raise SystemExit(f"resemblyzer_embed.py: {err}: {NOT_PEER_ENV}") from err

SAMPLE_RATE = 16000   # Resemblyzer's hparams.sampling_rate: the stream is already at it
PROGRESS_EVERY = 100  # utterances between progress lines


def read_utterances(stream):
    """(utt, float32 samples) for each record of the stream, until it ends."""
    while True:
        header = stream.readline()
        if not header:
            return
        fields = header.decode("utf-8").split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise SystemExit(f"resemblyzer_embed.py: bad record header {header[:80]!r}: expected 'utt_id num_samples'")
        utt, count = fields[0], int(fields[1])
        data = stream.read(4 * count)
        if len(data) != 4 * count:
            raise SystemExit(f"resemblyzer_embed.py: the stream ended inside utterance {utt} "
                             f"({len(data) // 4} of {count} samples): its writer stopped")
        yield utt, np.frombuffer(data, dtype="<f4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the .npz of embeddings to write")
    parser.add_argument("--facts", required=True, help="the .json of facts to write")
    parser.add_argument("--count", type=int, default=0, help="utterances expected, for progress lines")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    try:
        import torch
        from resemblyzer import VoiceEncoder, preprocess_wav
        from resemblyzer.audio import normalize_volume
        from resemblyzer.hparams import audio_norm_target_dBFS
    except ImportError as err:
        raise SystemExit(f"resemblyzer_embed.py: {err}: {NOT_PEER_ENV}") from err

    torch.set_num_threads(args.threads)
    encoder = VoiceEncoder("cpu", verbose=False)
    utts, embeddings, vad_emptied = [], [], []
    audio_samples = speech_samples = 0
    start = time.perf_counter()
    for utt, wav in read_utterances(sys.stdin.buffer):
        speech = preprocess_wav(wav, source_sr=SAMPLE_RATE)
        if speech.size == 0:
            vad_emptied.append(utt)
            speech = normalize_volume(wav, audio_norm_target_dBFS, increase_only=True)
        embeddings.append(encoder.embed_utterance(speech).astype(np.float32))
        utts.append(utt)
        audio_samples += wav.size
        speech_samples += speech.size
        if len(utts) % PROGRESS_EVERY == 0:
            print(f"resemblyzer_embed.py: {len(utts)} of {args.count or '?'} utterances, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    if not utts:
        raise SystemExit("resemblyzer_embed.py: no utterance on standard input")

    out = os.path.abspath(args.out)
    tmp = out + ".tmp"
    with open(tmp, "wb") as handle:   # written under a temporary name, then renamed: never half a file
        np.savez(handle, utts=np.array(utts), embeddings=np.stack(embeddings))
    os.replace(tmp, out)
    facts = {"resemblyzer": version("Resemblyzer"), "torch": torch.__version__,
             "webrtcvad": version("webrtcvad-wheels"), "librosa": version("librosa"),
             "params": sum(p.numel() for p in encoder.parameters()), "utterances": len(utts),
             "audio_s": audio_samples / SAMPLE_RATE, "speech_s": speech_samples / SAMPLE_RATE,
             "vad_emptied": vad_emptied, "embed_s": seconds, "threads": args.threads}
    with open(args.facts, "w", encoding="utf-8") as handle:
        json.dump(facts, handle, indent=1)
    print(f"resemblyzer_embed.py: {len(utts)} utterances, {facts['audio_s']:.0f} s of audio "
          f"({facts['speech_s']:.0f} s after the VAD), in {seconds:.1f} s: "
          f"{facts['audio_s'] / seconds:.0f}x real time on {args.threads} thread(s)", file=sys.stderr)


if __name__ == "__main__":
    main()
