"""A round's record for people: TensorBoard scalars, the one-line summary and the README's table."""

from __future__ import annotations

from typing import Sequence


def log_round(writer, record: dict) -> None:
    r = record["round"]
    for group in ("estimator", "imitator", "hallucinator", "refine", "lift"):
        for k, v in (record.get(group) or {}).items():
            if isinstance(v, (int, float)) and v is not None:
                writer.scalar(f"round/{group}/{k}", v, r)
    for k, v in record["phase_seconds"].items():
        writer.scalar(f"round/seconds/{k}", v, r)


def _kept(refine: dict) -> str:
    """'kept/sampled', with the kept frames where the pieces of the rollouts are kept."""
    text = f"{refine.get('kept', 0)}/{refine.get('sampled', 0)}"
    return text + (f" ({refine['kept_frames']} fr)" if "kept_frames" in refine else "")


def format_round(record: dict) -> str:
    e, i = record.get("estimator", {}), record.get("imitator", {})
    h = record.get("hallucinator")
    parts = [f"round {record['round']}: held-out MPJPE {e.get('mpjpe_mm', float('nan')):.1f} mm, "
             f"P-MPJPE {e.get('p_mpjpe_mm', float('nan')):.1f} mm",
             f"imitator success {i.get('success_rate', float('nan')):.2f}, "
             f"MPJPE {i.get('mpjpe_mm', float('nan')):.1f} mm, "
             f"{i.get('resets', 0)} resets, residual force {i.get('residual_force_n', float('nan')):.0f} N"]
    if h and "skipped" in h:
        parts.append(f"hallucinator skipped ({h['skipped']})")
    elif h:
        parts.append(f"hallucinated bone dev {h.get('bone_length_dev_max_m', float('nan')) * 100:.2f} cm, "
                     f"kept {_kept(record.get('refine') or {})}")
    parts.append(f"{record.get('round_seconds', 0):.0f} s")
    return "; ".join(parts)


def format_table(history: Sequence[dict]) -> str:
    """The README's per-round table (markdown)."""
    rows = ["| round | held-out MPJPE (mm) | held-out P-MPJPE (mm) | detector-like 2D P-MPJPE (mm) | I success | I MPJPE (mm) | I resets | "
            "I residual force (N / N m) | H bone dev (cm) | H skating (m/s) | H kept | E / I / H seconds | "
            "round seconds |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for rec in history:
        e, i, h, s = rec.get("estimator", {}), rec.get("imitator", {}), rec.get("hallucinator"), rec["phase_seconds"]
        ref = rec.get("refine") or {}
        hb = f"{h['bone_length_dev_max_m'] * 100:.2f}" if h and "bone_length_dev_max_m" in h else "-"
        skate = f"{h['skating_mps']:.2f}" if h and "skating_mps" in h else "-"
        kept = _kept(ref) if ref else "-"
        times = (f"{s.get('estimate', 0):.0f} / {s.get('imitate', 0) + s.get('rollout', 0):.0f} / "
                 f"{s.get('hallucinate', 0) + s.get('refine', 0):.0f}")
        rows.append(f"| {rec['round']} | {e.get('mpjpe_mm', float('nan')):.1f} | {e.get('p_mpjpe_mm', float('nan')):.1f} "
                    f"| {e.get('detector_like_p_mpjpe_mm', float('nan')):.1f} | {i.get('success_rate', float('nan')):.2f} | {i.get('mpjpe_mm', float('nan')):.1f} "
                    f"| {i.get('resets', '-')} | {i.get('residual_force_n', float('nan')):.0f} / "
                    f"{i.get('residual_torque_nm', float('nan')):.0f} | {hb} | {skate} | {kept} "
                    f"| {times} | {rec.get('round_seconds', 0):.0f} |")
    return "\n".join(rows)
