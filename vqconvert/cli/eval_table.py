"""The evaluation result as rich tables: what `vqconvert evaluate` prints without --json."""

from __future__ import annotations


def _f(v, fmt: str = "{:.2f}", none: str = "-") -> str:
    return none if v is None else fmt.format(v)


def _pct(v) -> str:
    return _f(v, "{:.0%}")


def _acc(a: dict | None) -> tuple[str, str, str]:
    """(accuracy 'x% (c/n)', chance, noise answers) of an accuracy dict."""
    if not a:
        return "-", "-", "-"
    noise = " / ".join(str(v) for v in (a.get("noise_answer") or {}).values())  # white / pink
    return f"{_pct(a['accuracy'])} ({a['correct']}/{a['n']})", _pct(a["chance"]), noise or "-"


def render(result: dict):
    """The result as rich renderables (printed to stdout by the command)."""
    from rich.table import Table

    out = []
    m, d, rec, cb = result["model"], result["data"], result["reconstruction"], result["codebook"]
    sp = result["judges"]["speaker"]
    out.append(
        f"[bold]{m['path']}[/] step {m['step']} ({m['preset']}, K={m['codebook_size']}, "
        f"{m['speakers']} speakers)  {d['evaluated']} utterances of the {d['split']} split "
        f"({d['split_utterances']}), {d['seconds']:.1f} s, {d['cropped']} cropped to {d['max_seconds']} s"
    )

    t = Table(title="Reconstruction (decoded in the source voice)", title_justify="left")
    for c in ("metric", "value", "n", "notes"):
        t.add_column(c, justify="right" if c in ("value", "n") else "left")
    t.add_row(
        "NLL (bits/sample)",
        _f(rec["nll_bits_per_sample"], "{:.3f}"),
        str(rec["nll_n"]),
        "teacher-forced, known speakers; 8 = uniform over 256 mu-law classes",
    )
    t.add_row(
        "speaker gain (bits/sample)",
        _f(rec.get("speaker_gain_bits"), "{:.3f}"),
        str(rec["nll_n"]),
        "NLL as other speakers minus as the true one; ~0: the decoder ignores the speaker",
    )
    t.add_row("STOI", _f(rec["stoi"], "{:.3f}"), str(rec["stoi_n"]), "vs input, 0..1 (pystoi)")
    t.add_row(
        "MCD (dB)",
        _f(rec["mcd_db"]),
        str(rec["mcd_n"]),
        "DTW-aligned mel-cepstral distortion, lower is better",
    )
    t.add_row("PESQ-WB", _f(rec["pesq_wb"]), str(rec["pesq_n"]), "1..4.6")
    acc, chance, noise = _acc(rec["speaker_id"])
    t.add_row("speaker ID = source", acc, "", f"chance {chance}; noise (white / pink) picks {noise}")
    t.add_row("similarity to source", _f(rec["similarity_to_source"], "{:.3f}"), "", "cosine to the source centroid")
    out.append(t)

    t = Table(title="Codebook", title_justify="left")
    for c in ("K", "used", "perplexity", "bitrate (bit/s)", "entropy-coded (bit/s)", "frames"):
        t.add_column(c, justify="right")
    t.add_row(
        str(cb["K"]),
        f"{cb['used']} ({cb['used_fraction']:.0%})",
        _f(cb["perplexity"], "{:.1f}"),
        _f(cb["bitrate_bps"], "{:.0f}"),
        _f(cb["entropy_bitrate_bps"], "{:.0f}"),
        str(cb["frames"]),
    )
    out.append(t)

    tr = result["transfer"]
    t = Table(
        title=f"Voice transfer ({tr['pairs']} conversions; judge: {sp['n_speakers'] or '-'} speakers, "
        f"chance {_pct(sp['chance'])})",
        title_justify="left",
    )
    for c in (
        "target",
        "n",
        "speaker ID = target",
        "chance",
        "noise picks (white / pink)",
        "ID = source",
        "sim target",
        "sim source",
    ):
        t.add_column(c, justify="left" if c in ("target", "noise picks (white / pink)") else "right")
    rows = [(k, v) for k, v in tr["by_target"].items()] + [("all", tr)]
    for name, v in rows:
        acc, chance, noise = _acc(v["speaker_id"])
        n = v.get("n", tr["pairs"]) if name != "all" else tr["pairs"]
        t.add_row(
            name,
            str(n),
            acc,
            chance,
            noise,
            _pct(v["identified_as_source"]),
            _f(v["similarity_to_target"], "{:.3f}"),
            _f(v["similarity_to_source"], "{:.3f}"),
        )
    out.append(t)
    if sp.get("real_accuracy"):
        acc, chance, noise = _acc(sp["real_accuracy"])
        out.append(
            f"speaker judge on the real inputs (its ceiling): {acc}, chance {chance}, "
            f"noise (white / pink) picks {noise}"
        )

    it = result["intelligibility"]
    t = Table(
        title=f"Intelligibility: WER (pocketsphinx) on {it['n_utterances']} whole utterances",
        title_justify="left",
    )
    for c in ("voice", "as", "n", "WER source", "WER reconstructed", "WER converted"):
        t.add_column(c, justify="left" if c in ("voice", "as") else "right")
    for name, v in it["by_source_voice"].items():
        t.add_row(
            name,
            "source",
            str(v["n"]),
            _pct(v["wer_source"]),
            _pct(v["wer_reconstructed"]),
            _pct(v["wer_converted"]),
        )
    for name, v in it["by_target_voice"].items():
        t.add_row(name, "target", str(v["n"]), _pct(v["wer_source"]), "", _pct(v["wer_converted"]))
    t.add_row(
        "all",
        "",
        str(it["n_utterances"]),
        _pct(it["wer_source"]),
        _pct(it["wer_reconstructed"]),
        _pct(it["wer_converted"]),
    )
    out.append(t)
    heard = result["judges"]["asr"].get("noise_answer")
    if heard:
        out.append("pocketsphinx hears in " + ", ".join(f"{k}: {v!r}" for k, v in heard.items()))
    for n in result["notes"]:
        out.append(f"note: {n}")
    return out
