"""Conditional forwarding: rules that send some questions to other upstreams (see rules.py)."""

from .rules import (DEFAULT_PRIORITY, ENABLED_KEY, SETTINGS_KEY, DuplicateRule, ForwardRule,
                    ForwardRuleError, ForwardRules, RuleNotFound, parse_duration, parse_rule_id,
                    reverse_zones, router_preset_rule, ROUTER_RULE_NAME)

__all__ = ["DEFAULT_PRIORITY", "ENABLED_KEY", "SETTINGS_KEY", "DuplicateRule", "ForwardRule",
           "ForwardRuleError", "ForwardRules", "RuleNotFound", "parse_duration", "parse_rule_id",
           "reverse_zones", "router_preset_rule", "ROUTER_RULE_NAME"]
