"""Machine identity: the one definition of "measured on the same machine, the same way".

Two results count as measured on the same machine when these fields of theirs agree: what the
result records about the CPU and the runtime, and the settings that change latency. The
estimator refuses to combine results whose identity differs and the store keys its rows by a
digest of it (the machine fingerprint), so both keep the same machines apart.
"""

from __future__ import annotations

import hashlib
import json

# cpu_id (family and model, core/machine.py) keeps apart CPUs a VM names alike ("AMD EPYC" for
# Zen 3 and Zen 5); results written before it was recorded have none and merge only with such.
MACHINE_FIELDS = ("cpu_model", "cpu_id", "cpu_flags", "cores", "logical_cores", "arch", "onnxruntime")
# `quick` (smoke-test timings) is a setting: quick and real results never merge nor mix.
SETTINGS_FIELDS = ("intra_op_threads", "inter_op_threads", "graph_optimization_level", "quick")


def identity(result: dict) -> dict:
    """The fields of a result that must agree for it to count as measured on the same machine."""
    machine, settings = result.get("machine") or {}, result.get("settings") or {}
    fields = {k: machine.get(k) for k in MACHINE_FIELDS}
    fields["cpu_flags"] = sorted(fields["cpu_flags"] or [])
    fields.update({k: settings.get(k) for k in SETTINGS_FIELDS})
    return fields


def section_of(field: str) -> str:
    """Where in a result an identity field lives: "machine" or "settings"."""
    return "settings" if field in SETTINGS_FIELDS else "machine"


def identity_key(fields: dict) -> str:
    """The machine fingerprint: 12 hex digits of a digest of `identity`."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def machine_label(fields: dict) -> str:
    threads = fields.get("intra_op_threads")
    cpu_id = f" ({fields['cpu_id']})" if fields.get("cpu_id") else ""
    return (f"{fields.get('cpu_model')}{cpu_id}, {fields.get('cores')} cores/{fields.get('logical_cores')} "
            f"threads, {fields.get('arch')}, onnxruntime {fields.get('onnxruntime')}, "
            f"intra_op_threads={threads} inter_op_threads={fields.get('inter_op_threads')} "
            f"opt={fields.get('graph_optimization_level')}"
            f"{', QUICK (smoke-test timings, not measurements)' if fields.get('quick') else ''}")
