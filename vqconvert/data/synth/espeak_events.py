"""espeak-ng phoneme events through its library (ctypes), one utterance per process.

Run as a script (stdlib only, so it starts fast): `python espeak_events.py VOICE [AUDIO.raw] < text` prints
`rate samples` and then `phoneme start_sample` lines; with AUDIO.raw it also writes the int16 audio.

One process per utterance because the library carries state from one utterance to the next (a second
sentence in the same process comes out a few samples different from `espeak-ng -w` in a fresh process,
measured with espeak-ng 1.51), while each corpus file was rendered by a fresh `espeak-ng` process. The
first utterance of a process is sample-identical to the start of `espeak-ng -w`'s output (the command
line adds a final pause).
"""

import ctypes
import sys

END_OF_LIST, PHONEME = 0, 7
AUDIO_OUTPUT_SYNCHRONOUS, INIT_PHONEME_EVENTS, INIT_DONT_EXIT = 2, 0x0001, 0x8000
POS_CHARACTER, CHARS_UTF8 = 1, 1


class EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class Event(ctypes.Structure):  # espeak_EVENT of speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index at the engine's rate
        ("user_data", ctypes.c_void_p),
        ("id", EventId),
    ]


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))


def synthesize(spec: str, text: str) -> tuple[int, int, list, bytes]:
    """(rate, samples, [(phoneme, start sample)], int16 audio) for one utterance; SystemExit on failure."""
    try:
        lib = ctypes.CDLL("libespeak-ng.so.1")
    except OSError:
        sys.exit("libespeak-ng.so.1 not found (the espeak-ng package provides it)")
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INIT_PHONEME_EVENTS | INIT_DONT_EXIT)
    if rate <= 0:
        sys.exit("libespeak-ng failed to initialise")
    audio, events = [], []

    def callback(wav, n, ev) -> int:
        if wav and n > 0:
            audio.append(ctypes.string_at(wav, 2 * n))
        i = 0
        while ev[i].type != END_OF_LIST:
            if ev[i].type == PHONEME and ev[i].id.string:
                events.append((ev[i].id.string.decode("ascii", "replace"), int(ev[i].sample)))
            i += 1
        return 0

    cb = CALLBACK(callback)
    lib.espeak_SetSynthCallback(cb)
    if lib.espeak_SetVoiceByName(spec.encode()) != 0:
        sys.exit(f"espeak-ng has no voice {spec!r}")
    data = text.encode("utf-8")
    buf = ctypes.create_string_buffer(data)
    if lib.espeak_Synth(buf, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None) != 0:
        sys.exit(f"espeak-ng could not synthesize {text!r}")
    lib.espeak_Synchronize()
    pcm = b"".join(audio)
    return rate, len(pcm) // 2, events, pcm


def main() -> None:
    spec = sys.argv[1]
    rate, samples, events, pcm = synthesize(spec, sys.stdin.read())
    if len(sys.argv) > 2:
        with open(sys.argv[2], "wb") as fh:
            fh.write(pcm)
    out = [f"{rate} {samples}"] + [f"{p} {s}" for p, s in events]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
