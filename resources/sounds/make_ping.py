"""Generate ping.wav (D4): a short, soft two-tone chime.

Two sine notes a fifth apart (A5 then E6), each with a quick attack, an exponential decay and a
quiet octave partial for a bell-like colour; the whole ends in a fade-out so it never clicks.
Run from the repository root: `python -m resources.sounds.make_ping`.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

__all__ = ["RATE", "render", "write_wav"]

RATE = 44_100
DURATION_S = 0.22
# (frequency Hz, start s, peak amplitude)
NOTES = ((880.0, 0.0, 0.45), (1318.51, 0.07, 0.40))
ATTACK_S = 0.004
DECAY_PER_S = 18.0
FADE_OUT_S = 0.05


def _note(t: float, freq: float, start: float, peak: float) -> float:
    local = t - start
    if local < 0:
        return 0.0
    envelope = peak * min(1.0, local / ATTACK_S) * math.exp(-DECAY_PER_S * local)
    phase = 2 * math.pi * freq * local
    return envelope * (math.sin(phase) + 0.18 * math.sin(2 * phase))


def render() -> list[int]:
    total = int(RATE * DURATION_S)
    fade_from = total - int(RATE * FADE_OUT_S)
    samples = []
    for i in range(total):
        t = i / RATE
        value = sum(_note(t, f, s, p) for f, s, p in NOTES)
        if i >= fade_from:
            value *= (total - i) / (total - fade_from)
        samples.append(max(-32767, min(32767, round(value * 32767 * 0.8))))
    return samples


def write_wav(path: Path) -> None:
    samples = render()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "ping.wav"
    write_wav(target)
    print(target)
