"""The list of base-scenario values a calibration keeps, each with the reason it was not fitted."""

from __future__ import annotations

from typing import Any

from calibration.collector import Collector

__all__ = ["kept_from_base"]


_KEPT_REASONS: tuple[tuple[str, str], ...] = (
    ("demand.cac_usd", "a cost: not in the CSVs"),
    ("demand.referral", "referrals are not identifiable in an order log"),
    ("repurchase.enabled", "model switch"),
    ("fulfilment.cogs_share", "a cost: not in the CSVs"),
    ("fulfilment.shipping_cost_usd", "a cost: not in the CSVs"),
    ("fulfilment.fulfilment_cost_usd", "a cost: not in the CSVs"),
    ("fulfilment.promise_padding_days", "a policy: not in the CSVs"),
    ("carrier.name", "a label"),
    ("carrier.reship_lost_or_damaged", "a policy: not in the CSVs"),
    ("notifications", "policy and effect parameters: not in the CSVs"),
    ("onboarding", "policy and effect parameters: not in the CSVs"),
    ("automation", "automation costs and effects: not in the CSVs"),
    ("contacts.tier2", "tier-2 work is not in contacts.csv"),
    ("warranty", "warranty claims are not in the CSVs"),
    ("experience", "effects of experience on loyalty and satisfaction: not fitted"),
    ("loyalty", "loyalty program economics: not in the CSVs"),
    ("finance", "financial assumptions"),
    ("returns.window_days", "a policy: not in the CSVs"),
    ("returns.free_returns", "a policy: not in the CSVs"),
    ("returns.return_fee_usd", "a policy: not in the CSVs"),
    ("returns.free_returns_uplift", "not identifiable from one policy regime"),
    ("returns.exchange_first", "a policy: not in the CSVs"),
    ("returns.exchange_bonus_usd", "a policy: not in the CSVs"),
    ("returns.refund_contact_threshold_days", "a policy: not in the CSVs"),
    ("returns.return_shipping_cost_usd", "a cost: not in the CSVs"),
    ("returns.processing_cost_usd", "a cost: not in the CSVs"),
    ("returns.writeoff_share", "a cost: not in the CSVs"),
    ("returns.categories", "categories are not in the CSVs"),
    ("contacts.channels", "channel settings (SLA, cost, shrinkage, concurrency): not in the CSVs"),
    ("contacts.reasons", "not identified from the given files"),
    ("description", "text"),
)


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and "dist" not in node and node:
        out: list[str] = []
        for k, v in node.items():
            out.extend(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return [prefix]


def kept_from_base(base_dump: dict[str, Any], overrides: dict[str, Any], out: Collector, files: set[str]) -> list[dict[str, str]]:
    over = set(_leaves(overrides))
    kept = []
    file_of = {"demand": "orders", "repurchase": "orders", "fulfilment": "orders", "carrier": "orders", "returns": "returns"}
    for path in _leaves(base_dump):
        if path in ("name", "start_date", "horizon_days", "provenance") or any(path == o or path.startswith(o + ".") or o.startswith(path + ".") for o in over):
            continue
        reason = next((r for pre, r in sorted(out.reasons.items(), key=lambda kv: -len(kv[0])) if path == pre or path.startswith(pre + ".")), None)
        if reason is None:
            section = path.split(".")[0]
            if section in file_of and file_of[section] not in files:
                reason = f"no {file_of[section]} file"
            elif path.startswith("contacts.") and "contacts" not in files and ".staffing" not in path:
                reason = "no contacts file"
            elif ".staffing" in path and "staffing" not in files:
                reason = "no staffing file"
            else:
                reason = next((r for pre, r in _KEPT_REASONS if path == pre or path.startswith(pre)), "not identified from the given files")
        kept.append({"path": path, "reason": reason})
    return kept
