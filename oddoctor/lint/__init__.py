"""`oddoctor lint`: find per-item Sessions, graph ops and model loads in inference code, with ``ast`` only.

The engine never imports or runs the code it reads, and never imports TensorFlow or ``oddoctor.cli``.

- :mod:`.api`: ``LintRule`` / ``Hit`` (what a rule plugin returns), ``Finding`` (what the engine reports).
- :mod:`.source`: files, folders and notebook code cells as parsed modules (parse errors kept as facts).
- :mod:`.names`: names resolved through imports, aliases and star imports to canonical TensorFlow names.
- :mod:`.project`: the linted tree as one program: functions, calls, and which code runs once per item.
- :mod:`.engine`: runs every rule on every module, isolates rules that raise, applies ignore comments.
- :mod:`.render`: human, JSON and SARIF 2.1.0 output; :mod:`.diff`: the LegacyDetector patch.
"""

from __future__ import annotations

from oddoctor.lint.api import Finding, Hit, LintRule, lint_rule

__all__ = ["Finding", "Hit", "LintRule", "lint_rule"]
