"""Rules: YAML rule files, multilingual normalisation and the compiled matcher.

    ruleset = load_rules(["rules/"], known_destinations=cfg.destination_names())
    matcher = Matcher(ruleset, default_destinations=cfg.alerts.default)
    hits = matcher.match(message)

:func:`load_rules` raises :class:`RuleSetError` whose ``problems`` print as
``file:line:col: message`` (:func:`format_problems`). The format is documented in docs/rules.md.
"""

from .loader import load_rules
from .matcher import Matcher
from .problems import Problem, RuleSetError, format_problems
from .ruleset import LEVELS, Rule, RuleSet, Selection

__all__ = [
    "LEVELS",
    "Matcher",
    "Problem",
    "Rule",
    "RuleSet",
    "RuleSetError",
    "Selection",
    "format_problems",
    "load_rules",
]
