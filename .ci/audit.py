"""`make audit`: known vulnerabilities in the installed dependencies, via pip-audit.

pip-audit asks the PyPI vulnerability database about every installed distribution. Offline (or
behind a mirror that does not serve that database) nothing can be checked: this script says so
plainly and exits 0, so an offline build never fails on it; where the database answers (CI), a
known vulnerability fails with exit status 1 and the list of what to upgrade.

Usage: python .ci/audit.py (or make audit)
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

PROBE = "https://pypi.org/pypi/numpy/json"
"""A dependency's entry in the database pip-audit uses; it must list its ``vulnerabilities``."""


def database_reachable(timeout_s: float = 10.0) -> bool:
    try:
        with urllib.request.urlopen(PROBE, timeout=timeout_s) as resp:
            data = json.load(resp)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "vulnerabilities" in data and "info" in data


def skipped(reason: str) -> int:
    print(f"audit: SKIPPED - {reason}; nothing was checked. Run `make audit` where pypi.org answers (CI does).")
    return 0


def main() -> int:
    if not database_reachable():
        return skipped(f"the vulnerability database ({PROBE}) is not reachable from this machine")
    out = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off", "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        deps = json.loads(out.stdout)["dependencies"]
    except (ValueError, KeyError, TypeError):
        print(out.stdout + out.stderr, file=sys.stderr)
        print("audit: pip-audit did not produce a report (see above)", file=sys.stderr)
        return 1
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        return skipped("the vulnerability database answered but audited none of the packages")
    vulnerable = [d for d in audited if d.get("vulns")]
    for d in vulnerable:
        for v in d["vulns"]:
            fix = ", ".join(v.get("fix_versions") or []) or "no fixed version yet"
            print(f"{d['name']} {d['version']}: {v['id']} (fixed in: {fix})")
    not_audited = sorted(d["name"] for d in deps if "skip_reason" in d)
    note = f"; not audited: {', '.join(not_audited)}" if not_audited else ""
    print(f"audit: {len(vulnerable)} vulnerable of {len(audited)} packages audited{note}")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
