"""Prompt templates and the few-shot builder."""

from playground.prompts.fewshot import (
    FewShotBuilder,
    FewShotConfig,
    PromptPreview,
    Recipe,
    list_recipes,
    load_recipe,
    save_recipe,
    select_examples,
    strategy_name,
)
from playground.prompts.templates import TEMPLATES, PromptTemplate, get_template

__all__ = [
    "TEMPLATES",
    "FewShotBuilder",
    "FewShotConfig",
    "PromptPreview",
    "PromptTemplate",
    "Recipe",
    "get_template",
    "list_recipes",
    "load_recipe",
    "save_recipe",
    "select_examples",
    "strategy_name",
]
