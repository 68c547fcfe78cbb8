"""The evaluator's audio steps: load the sources, encode them, generate reconstructions and conversions,
save them as WAV and measure the reconstructions (MCD, STOI, PESQ)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vqconvert.audio import save_wav
from vqconvert.errors import AudioError
from vqconvert.evaluation.metrics import bits_per_sample, mcd
from vqconvert.evaluation.selection import prepare_audio


def safe_name(name: str) -> str:
    """A speaker or utterance name made safe for a file name."""
    return re.sub(r"[^\w.+-]", "_", name).strip(".") or "x"


@dataclass
class EvalItem:
    """One evaluated utterance: its audio, codes, outputs and result row."""

    utt: Any
    audio: np.ndarray
    cropped: bool
    seconds_trimmed: float
    known: bool
    spk_index: int | None
    codes: torch.Tensor | None = None
    row: dict = field(default_factory=dict)
    recon: np.ndarray | None = None
    recon_voice: str | None = None
    conversions: dict[str, np.ndarray] = field(default_factory=dict)  # target -> audio


class GenerationSteps:
    """Mixed into `Evaluator` (uses its loaded, opts, cfg, sr, log, progress, note and _use)."""

    def _load_sources(self, chosen) -> list[EvalItem]:
        items = []
        for u in chosen:
            try:
                audio, cropped, secs = prepare_audio(u.path, self.sr, self.opts.max_seconds, self.cfg.hop)
            except AudioError as err:
                self.note(f"skipped {u.key}: {err}")
                continue
            known = u.speaker in self.loaded.speakers
            it = EvalItem(u, audio, cropped, secs, known, self.loaded.speakers.index(u.speaker) if known else None)
            it.row = {
                "key": u.key,
                "speaker": u.speaker,
                "known_speaker": known,
                "path": str(u.path),
                "text": u.text,
                "seconds": len(audio) / self.sr,
                "trimmed_seconds": round(secs, 3),
                "cropped": cropped,
                "input_identified_as": None,
                "reconstruction_identified_as": None,
                "reconstruction_similarity": None,
                "hyp_source": None,
                "hyp_reconstruction": None,
                "conversions": [],
            }
            items.append(it)
        return items

    def _encode(self, items: list[EvalItem], targets: list[str]) -> None:
        from vqconvert.inference import encode_audio

        model, spk = self.loaded.model, self.loaded.speakers
        for it in items:
            it.codes = encode_audio(model, it.audio)
            it.row["frames"] = int(it.codes.numel())
            it.row["codes_used"] = int(torch.unique(it.codes).numel())
            it.row["nll_bits_per_sample"] = it.row["nll_other_speakers_bits"] = None
            if it.known and self._use("nll"):
                it.row["nll_bits_per_sample"] = bits_per_sample(model, it.codes, it.spk_index, it.audio)
                # The same codes and audio scored as other speakers (the transfer targets, else the next
                # speaker): the gap says how much the decoder uses the speaker embedding at all.
                others = [spk.index(t) for t in targets if t != it.utt.speaker] or (
                    [(it.spk_index + 1) % len(spk)] if len(spk) > 1 else []
                )
                if others:
                    it.row["nll_other_speakers_bits"] = sum(
                        bits_per_sample(model, it.codes, o, it.audio) for o in others
                    ) / len(others)

    def _generate(self, items: list[EvalItem], targets: list[str]) -> None:
        from vqconvert.generate import generate

        o, spk = self.opts, self.loaded.speakers
        jobs: list[tuple[EvalItem, str | None, str]] = []  # (item, target or None for recon, voice)
        for it in items:
            voice = it.utt.speaker if it.known else (targets[0] if targets else spk[0])
            it.recon_voice = voice
            jobs.append((it, None, voice))
            for t in targets:
                if t != it.utt.speaker:
                    jobs.append((it, t, t))
        total = sum(int(it.codes.numel()) * self.cfg.hop for it, _, _ in jobs)
        self.log(f"generating {len(jobs)} clips ({total / self.sr:.1f} s of audio) in batches of {o.batch_size}")
        done = 0
        bs = max(1, o.batch_size)
        for b, start in enumerate(range(0, len(jobs), bs)):
            batch = jobs[start : start + bs]
            offset = done

            def report(d: int, _t: int, offset: int = offset) -> None:
                self.progress("generate", offset + d, total)

            outs = generate(
                self.loaded.model,
                [it.codes for it, _, _ in batch],
                [spk.index(v) for _, _, v in batch],
                temperature=o.temperature,
                greedy=o.greedy,
                seed=o.seed * 100_003 + b,
                backend=o.backend,
                progress=report,
            )
            for (it, target, _), wav in zip(batch, outs, strict=True):
                wav = wav.detach().float().cpu().numpy()
                if target is None:
                    it.recon = wav
                else:
                    it.conversions[target] = wav
                    it.row["conversions"].append(
                        {
                            "target": target,
                            "identified_as": None,
                            "similarity_to_target": None,
                            "similarity_to_source": None,
                            "hyp": None,
                        }
                    )
            done += sum(int(it.codes.numel()) * self.cfg.hop for it, _, _ in batch)
            self.progress("generate", done, total)

    def _save(self, items: list[EvalItem]) -> None:
        out = Path(self.opts.out_dir)
        for it in items:
            d = out / safe_name(it.utt.speaker)
            d.mkdir(parents=True, exist_ok=True)
            stem = safe_name(it.utt.utt_id)
            files = {"source": d / f"{stem}.source.wav"}
            recon_name = "recon" if it.known else f"recon-{safe_name(it.recon_voice)}"
            files["reconstruction"] = d / f"{stem}.{recon_name}.wav"
            save_wav(files["source"], it.audio, self.sr, overwrite=True)
            save_wav(files["reconstruction"], it.recon, self.sr, overwrite=True)
            for t, wav in it.conversions.items():
                files[t] = d / f"{stem}.to-{safe_name(t)}.wav"
                save_wav(files[t], wav, self.sr, overwrite=True)
            it.row["files"] = {k: str(v) for k, v in files.items()}

    def _reconstruction_metrics(self, items: list[EvalItem]) -> None:
        from vqconvert import judges

        for it in items:
            r = it.row
            r["reconstruction_voice"] = it.recon_voice
            r["mcd_db"] = mcd(it.audio, it.recon, self.sr) if self._use("mcd") else None
            r["stoi"] = judges.stoi(it.audio, it.recon, self.sr) if self._use("stoi") else None
            r["pesq_wb"] = judges.pesq_wb(it.audio, it.recon, self.sr) if self._use("pesq") else None
        if self._use("stoi") and all(i.row["stoi"] is None for i in items):
            self.note(f"STOI not measured: clips shorter than {judges.STOI_MIN_SECONDS} s of speech")
